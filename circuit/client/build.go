package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
)

// firstStream is the stream an on-demand build opens in its first flight,
// with the application's first bytes (at most MaxEarlyData) if it has
// them. An optimistic one is returned once the circuit is built, without
// waiting for CONNECTED.
type firstStream struct {
	host       string
	port       uint16
	data       []byte
	optimistic bool
}

// build builds a circuit whose exit accepts port, trying up to
// BuildAttempts different paths: the relays of a path that failed are
// left out of the next ones. soft names exits to avoid if others will do.
// With first, the circuit's first stream rides in the build's flight
// (0-RTT, 04 §9) and is returned too; if the exit refuses it, the circuit
// is returned with the refusal. A build that fails may have delivered
// first's data (its CREATED lost, say): the next path sends it again, as
// Tor resends optimistic data on a retried stream (04 §9).
func (m *CircuitManager) build(ctx context.Context, port uint16, soft map[peer.ID]bool, first *firstStream) (*managed, *Stream, error) {
	var lastErr error
	tried := 0
	for range m.cfg.BuildAttempts {
		path, err := m.pickPath(port, soft)
		if err != nil {
			return nil, nil, errors.Join(err, lastErr)
		}
		exit := path[len(path)-1].id()
		mc, s, err := m.buildPath(ctx, path, first)
		m.mu.Lock()
		if m.building[exit]--; m.building[exit] == 0 {
			delete(m.building, exit)
		}
		m.mu.Unlock()
		if mc != nil {
			return mc, s, err
		}
		lastErr, tried = err, tried+1
		m.cfg.Logger.Debug("client: circuit build failed", "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, fmt.Errorf("client: %d paths failed, the last with: %w", tried, lastErr)
}

// pickPath chooses a path avoiding, where it can, soft and the exits of
// builds in flight, and counts its exit as in flight. Picks are serialised
// so that concurrent builds see each other's exits.
func (m *CircuitManager) pickPath(port uint16, soft map[peer.ID]bool) ([]*candidate, error) {
	m.pickMu.Lock()
	defer m.pickMu.Unlock()
	avoid := maps.Clone(soft)
	if avoid == nil {
		avoid = map[peer.ID]bool{}
	}
	m.mu.Lock()
	for id := range m.building {
		avoid[id] = true
	}
	m.mu.Unlock()
	path, err := m.choosePath(port, avoid)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.building[path[len(path)-1].id()]++ // until the build ends
	m.mu.Unlock()
	return path, nil
}

// choosePath picks a path from the current cache and guard set.
func (m *CircuitManager) choosePath(port uint16, soft map[peer.ID]bool) ([]*candidate, error) {
	now := m.cfg.Now()
	hadHistory := !m.guards.noHistory()
	cands := m.candidates(now)
	if m.afterWeigh != nil {
		m.afterWeigh()
	}
	switch {
	case len(m.guards.IDs()) < m.cfg.Guards || m.guards.noHistory():
		m.refreshGuards(cands, now) // before Run's first pass, or after losses
		// The refresh may have recorded relays seen for the first time:
		// weigh again, for the exits' age.
		cands = m.candidates(now)
	case !hadHistory:
		// Run's first pass recorded the client's first view after these
		// weights were taken, when no relay was yet old enough to be an
		// exit: weigh again, or no path would have an exit.
		cands = m.candidates(now)
	}
	req := &pathRequest{port: port, guards: m.guards.usable(cands, now), soft: soft}
	m.mu.Lock()
	suspects := m.failedRelays.avoided(now)
	m.mu.Unlock()
	var path []*candidate
	err := ErrNoPath
	m.randomness(func(r *rand.Rand) {
		req.rnd = r
		path, err = leastSuspect(m.rules, cands, req, suspects)
	})
	if err != nil {
		return nil, fmt.Errorf("%w (%d relays known, %d usable guards, port %d)", err, len(cands), len(req.guards), port)
	}
	return path, nil
}

// suspectDraws is how many paths leastSuspect draws when every path holds
// a suspect, to keep the one with the fewest failures against it.
const suspectDraws = 16

// leastSuspect chooses a path without suspects if one exists. Else it
// leaves out those that failed most, then fewer, and so on (a dead relay
// fails every path it is in, a live one only those it shares with a dead
// one), and of a few paths so drawn keeps the one whose relays failed
// least in all: drawn at random alone, it would often be a path that just
// failed.
func leastSuspect(rules pathRules, cands []*candidate, req *pathRequest, suspects map[peer.ID]int) ([]*candidate, error) {
	for least := 1; ; least++ {
		req.avoid = map[peer.ID]bool{}
		for id, n := range suspects {
			if n >= least {
				req.avoid[id] = true
			}
		}
		best, bestScore := []*candidate(nil), 0
		for range suspectDraws {
			path, err := rules.choose(cands, req)
			if err != nil {
				break
			}
			score := 0
			for _, c := range path {
				score += suspects[c.id()]
			}
			if best == nil || score < bestScore {
				best, bestScore = path, score
			}
			if score == 0 {
				break
			}
		}
		if best != nil {
			return best, nil
		}
		if len(req.avoid) == 0 {
			return nil, ErrNoPath
		}
	}
}

// buildPath builds one circuit through path within the learned timeout,
// and opens first on it if set. A first hop that cannot be reached counts
// against the guard; any other build failure against the path's other
// relays, and every failure once the guard was reached against the
// guard's path bias. It returns a nil circuit only if the build failed.
func (m *CircuitManager) buildPath(ctx context.Context, path []*candidate, first *firstStream) (*managed, *Stream, error) {
	var pay PayConfig
	if m.cfg.Pay != nil {
		relays := make([]*descriptor.Relay, len(path))
		for i, p := range path {
			relays[i] = p.r
		}
		var err error
		if pay, err = m.cfg.Pay(relays); err != nil {
			return nil, nil, fmt.Errorf("client: cannot pay the path: %w", err)
		}
	}
	bctx, cancel := context.WithTimeout(ctx, m.timer.timeout())
	defer cancel()
	guard := path[0]
	if _, err := m.cfg.Links.Channel(bctx, guard.first); err != nil {
		if ctx.Err() == nil {
			m.guards.failed(guard.id(), m.cfg.Now())
			m.suspect(path[:1]) // as a middle or exit too
		}
		return nil, nil, fmt.Errorf("client: first hop unreachable: %w", err)
	}
	m.guards.succeeded(guard.id(), m.cfg.Now())
	start := time.Now()
	c, s, err := m.startBuild(bctx, path, first)
	if err == nil {
		err = c.awaitBuilt(bctx)
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
		case bctx.Err() != nil:
			m.timer.timedOut()
			m.suspect(path[1:])
			m.countBuild(guard.id(), false)
		default:
			cause := err // awaitBuilt keeps only the text of the circuit's error
			if c != nil && c.Err() != nil {
				cause = c.Err()
			}
			m.suspect(blamed(path, cause))
			m.countBuild(guard.id(), false)
		}
		return nil, nil, err
	}
	m.timer.observe(time.Since(start))
	m.vouch(path)
	m.countBuild(guard.id(), true)
	ids := make([]peer.ID, len(path))
	for i, p := range path {
		ids[i] = p.id()
	}
	mc := &managed{c: c, path: ids, exit: path[len(path)-1].r, built: m.cfg.Now(), stale: pay.Stale}
	if m.cfg.Pay != nil {
		if err := m.startPayments(c, pay); err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	if m.cfg.Front != nil && len(path) >= 3 {
		m.startFront(c)
	}
	if s != nil && !first.optimistic {
		if err := s.wait(ctx); err != nil {
			return mc, nil, err
		}
	}
	return mc, s, nil
}

// startBuild sends the CREATE, and first's BEGIN as an early cell.
func (m *CircuitManager) startBuild(ctx context.Context, path []*candidate, first *firstStream) (*Circuit, *Stream, error) {
	c, create, err := newCircuit(m.cfg.CreateClock(), hops(path))
	if err != nil {
		return nil, nil, err
	}
	var s *Stream
	var early [][]byte
	if first != nil {
		if s, early, err = c.earlyStream(ctx, first.host, first.port, first.data); err != nil {
			return nil, nil, err
		}
	}
	return c, s, c.start(ctx, m.cfg.Links, path[0].first, create, early)
}

// startPayments runs the payments of a built circuit until it closes;
// if they fail, it closes the circuit. What they pay is added to Spent.
func (m *CircuitManager) startPayments(c *Circuit, cfg PayConfig) error {
	m.payments.Add(1)
	onPaid := cfg.OnPaid
	cfg.OnPaid = func(msat uint64) {
		m.spent.Add(msat)
		if onPaid != nil {
			onPaid(msat)
		}
	}
	err := PayFor(c, cfg, m.cfg.Logger, func([]uint64) { m.payments.Done() })
	if err != nil {
		m.payments.Done()
	}
	return err
}

// blamed are the relays of a failed build's path that can explain err.
// A relay that gets a DESTROY from its next hop passes on "destroyed"
// (specs/04), so a client that gets "connect-failed" or "no-such-relay"
// has it from its guard, which could not reach or did not know the
// second relay: that relay alone is to blame. A guard that finds the
// client's clock off blames no relay: the clock is wrong, not the path.
// Any other failure may lie anywhere after the guard.
func blamed(path []*candidate, err error) []*candidate {
	var d *circuit.DestroyedError
	switch {
	case errors.As(err, &d) && d.Reason == circuit.DestroyClockSkew:
		return nil
	case len(path) > 1 && errors.As(err, &d) &&
		(d.Reason == circuit.DestroyConnectFailed || d.Reason == circuit.DestroyNoSuchRelay):
		return path[1:2]
	}
	return path[1:]
}

// suspect counts a failure against relays of a failed path, which new
// paths leave out for a while (suspects.go). A build does not say which
// hop failed, so every hop after the guard is suspect; the guard is
// suspect only if it could not be reached. A failure only one relay can
// explain counts twice.
func (m *CircuitManager) suspect(path []*candidate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	m.failedRelays.failed(ids(path), now)
	if len(path) == 1 {
		m.failedRelays.failed(ids(path), now) // nobody else can have caused it
	}
}

// vouch clears the relays of a path that just carried a built circuit.
func (m *CircuitManager) vouch(path []*candidate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failedRelays.vouch(ids(path))
}

func ids(path []*candidate) []peer.ID {
	out := make([]peer.ID, len(path))
	for i, c := range path {
		out[i] = c.id()
	}
	return out
}
