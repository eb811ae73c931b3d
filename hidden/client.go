package hidden

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	yamux "github.com/libp2p/go-yamux/v5"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/errkind"
	"github.com/obolnet/obol/descriptor"
)

// Connector is the client side of hidden services: it reaches them. It
// caches descriptors until they expire and keeps one joined circuit (a
// session) per service, on which every Dial to that service opens a new
// stream. Its methods are safe for concurrent use.
type Connector struct {
	net Config

	mu       sync.Mutex // guards the fields below
	descs    map[descriptor.HSAddress]*cachedDesc
	sessions map[descriptor.HSAddress]*yamux.Session
	pending  map[descriptor.HSAddress]chan struct{} // connects under way
	closed   bool
}

type cachedDesc struct {
	content  *descriptor.HSContent
	expires  time.Time
	period   descriptor.Period
	revision uint64
}

// NewConnector returns a connector on n. It starts nothing.
func NewConnector(n Config) (*Connector, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	return &Connector{net: n.withDefaults(), descs: map[descriptor.HSAddress]*cachedDesc{},
		sessions: map[descriptor.HSAddress]*yamux.Session{}, pending: map[descriptor.HSAddress]chan struct{}{}}, nil
}

// IsAddress reports whether host names a hidden service (ends in .obol);
// a client manager sends such hosts to Dial instead of an exit.
func IsAddress(host string) bool { return descriptor.IsHSHost(host) }

// Dial connects to address, "<name>.obol:port". A mistyped name fails at
// once with an error wrapping descriptor.ErrHSChecksum; an unknown service
// with ErrUnknownService.
//
// Every error carries a kind (errkind.Of): Malformed or Unsupported for a
// bad request; NotFound for a mistyped address and for a service that is
// unknown, offline or does not answer; NotAllowed for a service that does
// not admit this client; Retry while too few relays are known; Timeout
// when ctx ends first; Closed once the client is closed; OtherPath when
// the circuits tried failed.
func (c *Connector) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, errkind.Wrap(errkind.Unsupported, fmt.Errorf("hidden: dial %s: only tcp", network))
	}
	host, ps, err := net.SplitHostPort(address)
	if err != nil {
		return nil, errkind.Wrap(errkind.Malformed, fmt.Errorf("hidden: dial: %w", err))
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return nil, errkind.Wrap(errkind.Malformed, fmt.Errorf("hidden: dial: bad port %q", ps))
	}
	return c.DialPort(ctx, host, uint16(port))
}

// DialPort connects to virtual port of the service named host. Its errors
// carry kinds as Dial's do.
func (c *Connector) DialPort(ctx context.Context, host string, port uint16) (net.Conn, error) {
	conn, err := c.dialPort(ctx, host, port)
	if err != nil {
		return nil, errkind.Wrap(dialKind(ctx, err), err)
	}
	return conn, nil
}

// dialKind tells what a caller can do about a failure to reach a service.
func dialKind(ctx context.Context, err error) errkind.Kind {
	switch {
	case ctx.Err() != nil:
		return errkind.Timeout
	case errors.Is(err, errClientClosed):
		return errkind.Closed
	case errors.Is(err, ErrNoRelays):
		return errkind.Retry
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrNotAdmitted):
		return errkind.NotAllowed
	case errors.Is(err, descriptor.ErrHSAddress), errors.Is(err, descriptor.ErrHSChecksum),
		errors.Is(err, descriptor.ErrHSVersion), errors.Is(err, ErrUnknownService), errors.Is(err, ErrUnreachable):
		return errkind.NotFound
	}
	return errkind.OtherPath
}

// errClientClosed is what a dial on a closed client meets.
var errClientClosed = fmt.Errorf("hidden: client closed: %w", net.ErrClosed)

func (c *Connector) dialPort(ctx context.Context, host string, port uint16) (net.Conn, error) {
	addr, err := descriptor.ParseHSAddress(host)
	if err != nil {
		return nil, fmt.Errorf("hidden: %w", err)
	}
	s, err := c.session(ctx, addr)
	if err != nil {
		return nil, err
	}
	st, err := s.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("hidden: open stream: %w", err)
	}
	if err := writePort(st, port); err != nil {
		st.Reset()
		return nil, fmt.Errorf("hidden: open stream: %w", err)
	}
	return &Conn{Stream: st, local: Addr{Service: "client"}, remote: Addr{Service: addr.String(), Port: port}, port: port}, nil
}

// Forget drops what the client caches about a service.
func (c *Connector) Forget(host string) {
	addr, err := descriptor.ParseHSAddress(host)
	if err != nil {
		return
	}
	c.mu.Lock()
	s := c.sessions[addr]
	delete(c.sessions, addr)
	delete(c.descs, addr)
	c.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// Close closes every session.
func (c *Connector) Close() error {
	c.mu.Lock()
	c.closed = true
	ss := c.sessions
	c.sessions = map[descriptor.HSAddress]*yamux.Session{}
	c.mu.Unlock()
	for _, s := range ss {
		s.Close()
	}
	return nil
}

// session returns the live session with addr, connecting if there is
// none; concurrent callers share one connect.
func (c *Connector) session(ctx context.Context, addr descriptor.HSAddress) (*yamux.Session, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, errClientClosed
		}
		if s := c.sessions[addr]; s != nil && !s.IsClosed() {
			c.mu.Unlock()
			return s, nil
		}
		if wait, ok := c.pending[addr]; ok {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.pending[addr] = done
		c.mu.Unlock()
		s, err := c.connect(ctx, addr)
		c.mu.Lock()
		delete(c.pending, addr)
		close(done)
		if err == nil {
			c.sessions[addr] = s
		}
		c.mu.Unlock()
		return s, err
	}
}

// connect runs fetch, rendezvous and introduction; the rendezvous
// circuit is built while the descriptor is fetched. If the introduction
// fails with a cached descriptor, the descriptor is fetched again once.
// A connect that fails keeps no descriptor: the next one fetches it
// anew, and so learns the intro points and the proof-of-work effort the
// service states now (a service under attack raises its effort, and a
// client still proving the old one would stay in the flood's queue).
func (c *Connector) connect(ctx context.Context, addr descriptor.HSAddress) (*yamux.Session, error) {
	s, err := c.connectOnce(ctx, addr)
	if err != nil {
		c.mu.Lock()
		delete(c.descs, addr)
		c.mu.Unlock()
	}
	return s, err
}

func (c *Connector) connectOnce(ctx context.Context, addr descriptor.HSAddress) (*yamux.Session, error) {
	rp, err := c.openRendezvous(ctx)
	if err != nil {
		return nil, err
	}
	d, cached, err := c.descriptor(ctx, addr)
	if err != nil {
		rp.discard()
		return nil, err
	}
	for fetched := 0; ; fetched++ {
		s, err := c.meet(ctx, addr, d.content, cached, rp)
		if err == nil || ctx.Err() != nil || fetched == maxRefetches {
			return s, err
		}
		// Again with a descriptor fetched anew: any, if the one tried
		// was cached; if it was just fetched, only a newer replica, and
		// only when every intro point said the service had left it. A
		// service that has just republished (after losing an intro
		// point, or restarting) may have stored one replica and not yet
		// the others.
		above := uint64(0)
		if !cached {
			if !errors.Is(err, errIntroUnknown) {
				return s, err
			}
			above = d.revision
		}
		c.mu.Lock()
		delete(c.descs, addr)
		c.mu.Unlock()
		first := err
		if d, err = c.fetch(ctx, addr, above); err != nil {
			if errors.Is(err, errNoNewerDescriptor) {
				return nil, first // what the intro points said
			}
			return nil, err
		}
		cached = false
		if rp, err = c.openRendezvous(ctx); err != nil {
			return nil, err
		}
	}
}

// maxRefetches bounds the descriptors a connect fetches after its first:
// a stale cached one, then a stale replica.
const maxRefetches = 2

// descriptor returns addr's descriptor from the cache, or fetched; it
// reports which.
func (c *Connector) descriptor(ctx context.Context, addr descriptor.HSAddress) (*cachedDesc, bool, error) {
	now := c.net.Now()
	c.mu.Lock()
	d := c.descs[addr]
	c.mu.Unlock()
	if d != nil && now.Before(d.expires) && d.period == descriptor.PeriodAt(now, c.net.Period) {
		return d, true, nil
	}
	d, err := c.fetch(ctx, addr, 0)
	return d, false, err
}

// fetch fetches addr's descriptor, of a revision above above, and caches
// it.
func (c *Connector) fetch(ctx context.Context, addr descriptor.HSAddress, above uint64) (*cachedDesc, error) {
	content, r, err := c.net.fetchDescriptor(ctx, addr, above)
	if err != nil {
		return nil, err
	}
	d := &cachedDesc{content: content, expires: r.ExpiresAt(), period: r.Period, revision: r.Revision}
	c.mu.Lock()
	c.descs[addr] = d
	c.mu.Unlock()
	return d, nil
}

// meet introduces the client through each intro point in turn until the
// service comes to the rendezvous point. Each INTRODUCE1 rides behind its
// circuit's CREATE, whether or not the rendezvous circuit is built yet:
// the introduction's way to the rendezvous point (through the service) is
// far longer than the client's own, and the rendezvous point holds a
// service that comes first.
//
// With a cached descriptor only intro points on listed relays are tried:
// when those fail the descriptor is most likely stale (the service has
// moved its intro points, or restarted), and fetching it anew costs less
// than a circuit that waits out a dial to a relay that has gone.
func (c *Connector) meet(ctx context.Context, addr descriptor.HSAddress, desc *descriptor.HSContent, cached bool, rp *rendezvous) (*yamux.Session, error) {
	if desc.PoW.Effort > 0 { // one proof for this rendezvous point's cookie
		w, err := descriptor.SolvePoW(rand.Reader, desc.PoW.Seed, addr, rp.cookie, desc.PoW.Effort,
			func() bool { return ctx.Err() != nil })
		if err != nil {
			rp.discard()
			return nil, fmt.Errorf("hidden: proof of work: %w", err)
		}
		rp.pow = w
	}
	// Intro points on relays the directory lists first: one missing from
	// it has most likely gone (a descriptor outlives its intro points by
	// up to its lifetime), and a circuit to it waits out a dial.
	listed := map[peer.ID]bool{}
	for _, r := range c.net.Directory.Relays() {
		listed[r.PeerID] = true
	}
	var t *tunnel
	tried, left := 0, 0 // introductions, and refusals for a service that left
	err := introduceEach(ctx, len(desc.Intros), func(i int) bool { return listed[desc.Intros[i].Relay] }, rp.failed, func(n int) (err error) {
		if cached && !listed[desc.Intros[n].Relay] {
			return errIntroUnlisted
		}
		if h := testHookIntroduce.Load(); h != nil {
			(*h)(desc.Intros[n].Relay)
		}
		t, err = c.introduce(ctx, rp, addr, desc.Intros[n])
		if tried++; errors.Is(err, errIntroUnknown) {
			left++
		}
		return err
	})
	if err != nil {
		rp.discard()
		if errors.Is(err, ErrNotAdmitted) { // the caller's to know: a limit of its own
			return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		if tried > 0 && left == tried { // connectOnce looks for a newer descriptor
			return nil, fmt.Errorf("%w: %w", ErrUnreachable, errIntroUnknown)
		}
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return yamux.Client(t, yamuxConfig(), nil)
}

// Retries of introductions that every intro point refused for its rate
// (specs/07-hidden.md §10 step 5): after a pause drawn in [d/2, d], d doubling
// from introRetryFirst to introRetryMax, for introRetryFor at most.
const (
	introRetryFirst = 250 * time.Millisecond
	introRetryMax   = 2 * time.Second
	introRetryFor   = 20 * time.Second
)

// introduceEach calls try for each of n intro points, in a random order
// but those first holds for before the others, until one succeeds, ctx ends or stop reports the rendezvous lost. When
// every intro point refused for its rate — the service's share of each
// intro point's introductions was spent, as by a flood — it tries them
// all again after a pause, for introRetryFor at most: the flood takes the
// intro points' tokens as they come, and a client that gave up at once
// would never reach the service, whatever proof of work it brings. It
// returns the last error.
func introduceEach(ctx context.Context, n int, first func(int) bool, stop func() bool, try func(int) error) error {
	var lastErr error = ErrUnreachable
	start, pause := time.Now(), introRetryFirst
	for {
		limited := 0
		order := permutation(n)
		slices.SortStableFunc(order, func(a, b int) int { return boolOrder(first(b)) - boolOrder(first(a)) })
		for _, i := range order {
			err := try(i)
			if err == nil {
				return nil
			}
			lastErr = err
			if ctx.Err() != nil || stop() {
				return lastErr
			}
			if errors.Is(err, errIntroRateLimited) {
				limited++
			}
		}
		if limited < n || time.Since(start)+pause > introRetryFor {
			return lastErr
		}
		select {
		case <-time.After(pause/2 + mrand.N(pause/2+1)):
		case <-ctx.Done():
			return lastErr
		}
		pause = min(2*pause, introRetryMax)
	}
}

// testHookIntroduce, if set, is called with the relay of each intro
// point an introduction is built to.
var testHookIntroduce atomic.Pointer[func(peer.ID)]

// errIntroUnknown is an intro point's answer that the service holds no
// circuit with it any more: the descriptor is older than the service's
// intro points.
var errIntroUnknown = errors.New("hidden: intro point refused the introduction: the service is no longer there (status 1)")

// errIntroUnlisted skips an intro point of a cached descriptor on a relay
// the directory does not list.
var errIntroUnlisted = errors.New("hidden: intro point's relay is not listed")

// errIntroRateLimited is an intro point's refusal for its rate: the
// service's share of its introductions is spent for now.
var errIntroRateLimited = errors.New("hidden: intro point refused the introduction for its rate")

// rendezvous is the client's rendezvous point: chosen, its cookie drawn
// and its circuit started at once; the circuit is built (ready closed)
// while the client fetches the descriptor and introduces itself.
type rendezvous struct {
	relay   client.Hop
	cookie  [descriptor.CookieLen]byte
	pow     descriptor.PoW // the proof of work the service asks for, if any
	joined  chan *tunnel   // the tunnel, once RENDEZVOUS2 has come
	hsMu    sync.Mutex     // guards hs
	hs      *clientHandshake
	failure chan error

	ready chan struct{} // closed when the circuit is built, or failed
	k     *control      // the circuit's, once ready (nil if it failed)
	err   error         // why it failed, once ready
}

// openRendezvous chooses a rendezvous point and starts building a circuit
// to it with ESTABLISH_RENDEZVOUS behind the CREATE.
func (c *Connector) openRendezvous(ctx context.Context) (*rendezvous, error) {
	path, err := c.net.pathTo(nil, descriptor.RoleRendezvous, nil)
	if err != nil {
		return nil, err
	}
	rp := &rendezvous{relay: path[len(path)-1], joined: make(chan *tunnel, 1), failure: make(chan error, 1),
		ready: make(chan struct{})}
	rand.Read(rp.cookie[:])
	go func() {
		defer close(rp.ready)
		_, k, err := c.net.buildWith(ctx, path, true, func(k *control) []circuit.RelayCell {
			k.handle(descriptor.CmdRendezvous2, func(b []byte) { rp.onRendezvous2(k, b) })
			var pad sync.Once // an answer repeated starts no second machine
			k.handle(descriptor.CmdRendezvousEstablished, func([]byte) { pad.Do(func() { go c.net.padSetup(k.c) }) })
			return []circuit.RelayCell{cell(descriptor.CmdEstablishRendezvous, rp.cookie[:])}
		})
		rp.k, rp.err = k, err
	}()
	return rp, nil
}

// circuitDone is closed when the rendezvous circuit has closed, or could
// not be built.
func (rp *rendezvous) circuitDone() <-chan struct{} {
	select {
	case <-rp.ready:
		if rp.k == nil {
			return rp.ready
		}
		return rp.k.c.Done()
	default:
		return nil // not built yet: see ready
	}
}

// failed reports whether the rendezvous circuit is gone.
func (rp *rendezvous) failed() bool {
	select {
	case <-rp.ready:
		return rp.k == nil || rp.k.c.Err() != nil
	default:
		return false
	}
}

// discard closes the rendezvous circuit once it is built.
func (rp *rendezvous) discard() {
	go func() {
		<-rp.ready
		if rp.k != nil {
			rp.k.c.Close()
		}
	}()
}

// onRendezvous2 finishes the handshake in the circuit's receive path, so
// that the HS_DATA cells right behind it find the tunnel.
func (rp *rendezvous) onRendezvous2(k *control, b []byte) {
	rp.hsMu.Lock()
	hs := rp.hs
	rp.hs = nil
	rp.hsMu.Unlock()
	msg, err := descriptor.ParseRendezvous2(b)
	if hs == nil || err != nil {
		k.c.Close()
		return
	}
	send, recv, err := hs.finish(msg)
	if err != nil {
		rp.failure <- err
		k.c.Close()
		return
	}
	t := newTunnel(k.c, send, recv, false)
	k.handle(descriptor.CmdHSData, t.onCell)
	rp.joined <- t
}

// rendezvousTimeout bounds the wait for the service after an
// introduction.
const rendezvousTimeout = 30 * time.Second

// introduce builds a circuit to intro point ip with INTRODUCE1 behind its
// CREATE (closing it after the acknowledgement) and waits for the service
// at the rendezvous point, or for the intro point's refusal.
func (c *Connector) introduce(ctx context.Context, rp *rendezvous, addr descriptor.HSAddress, ip descriptor.IntroPoint) (*tunnel, error) {
	payload := descriptor.IntroPayload{Cookie: rp.cookie, OnionKey: rp.relay.OnionKey, Relay: rp.relay.Peer.ID, PoW: rp.pow}
	hs, msg, err := startHandshake(rand.Reader, ip, addr, payload.Marshal())
	if err != nil {
		return nil, err
	}
	rp.hsMu.Lock()
	rp.hs = hs
	rp.hsMu.Unlock()
	last := client.Hop{Peer: peer.AddrInfo{ID: ip.Relay}, OnionKey: ip.OnionKey}
	var ack chan []byte
	circ, _, err := c.net.buildToWith(ctx, &last, 0, map[peer.ID]bool{rp.relay.Peer.ID: true}, func(k *control) []circuit.RelayCell {
		ack = k.expect(descriptor.CmdIntroduceAck, 1)
		m := descriptor.Introduce{AuthKey: ip.AuthKey, Handshake: msg}
		return []circuit.RelayCell{cell(descriptor.CmdIntroduce1, m.Marshal())}
	})
	if err != nil {
		return nil, err
	}
	accepted := false // then padThenClose closes the circuit
	defer func() {
		if !accepted {
			circ.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, rendezvousTimeout)
	defer cancel()
	introDone := circ.Done()
	ready := rp.ready
	for {
		select {
		case t := <-rp.joined:
			if !accepted { // the service came before the acknowledgement
				accepted = true
				go c.net.padThenClose(circ)
			}
			return t, nil
		case err := <-rp.failure:
			return nil, err
		case b := <-ack:
			if len(b) == 1 && b[0] == descriptor.IntroAckRateLimited {
				return nil, errIntroRateLimited
			}
			if len(b) == 1 && b[0] == descriptor.IntroAckUnknown {
				return nil, errIntroUnknown
			}
			if len(b) != 1 || b[0] != descriptor.IntroAckOK {
				return nil, fmt.Errorf("hidden: intro point refused the introduction (status %v)", b)
			}
			ack, introDone = nil, nil // accepted: wait for the service
			accepted = true
			go c.net.padThenClose(circ)
		case <-introDone:
			return nil, errors.New("hidden: intro circuit closed before the acknowledgement")
		case <-ready:
			ready = nil // built or failed: circuitDone says which
		case <-rp.circuitDone():
			if rp.err != nil {
				return nil, fmt.Errorf("hidden: rendezvous circuit: %w", rp.err)
			}
			return nil, errors.New("hidden: rendezvous circuit closed")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func permutation(n int) []int { return mrand.Perm(n) }

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}
