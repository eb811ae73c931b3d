package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/errkind"
	"github.com/obolnet/obol/circuit/socks"
)

// IsolationKey keeps streams apart: streams with different keys never
// share a circuit. The zero key is the key of streams that name none.
type IsolationKey = socks.IsolationKey

// NewIsolationKey derives an isolation key from any label, e.g. a user or
// a browser tab (the same derivation as SOCKS credentials with an empty
// password).
func NewIsolationKey(label string) IsolationKey { return socks.NewIsolationKey(label, "") }

type isolationCtxKey struct{}

// WithIsolation returns a context under which Dial isolates by key.
func WithIsolation(ctx context.Context, key IsolationKey) context.Context {
	return context.WithValue(ctx, isolationCtxKey{}, key)
}

func isolationFrom(ctx context.Context) IsolationKey {
	k, _ := ctx.Value(isolationCtxKey{}).(IsolationKey)
	return k
}

// Dial opens a TCP connection to address ("host:port") through a circuit,
// isolated by the key WithIsolation put in ctx, if any. network is "tcp",
// "tcp4" or "tcp6". The host is resolved by the exit, never locally.
// A hidden-service name (.obol) fails with ErrHSName (kind
// NotAllowed) and never reaches an exit: hidden.Route sends such names to
// the hidden-service client.
//
// Every error carries a kind (errkind.Of) that tells the caller what to
// do: Malformed or Unsupported for a bad request, Closed once the manager
// is closed, Timeout when ctx ends first, Retry when no path meets the
// rules yet, OtherPath when the circuits tried failed, and the exit's
// answer: Refused, NotAllowed, NotFound, NoRoute or Timeout (04 END
// reasons, 10 §6).
//
// Dial does not wait for the exit to connect: the connection's first
// write rides with the BEGIN (optimistic data), so a request costs one
// path round trip. A refusal by the exit (an *EndError of kind Refused,
// ...) is therefore reported by the first Read or Write, wrapped in the error
// they return; so are failures to build a circuit when none was ready.
// ctx bounds the opening of the stream even after Dial has returned;
// cancelling it then does not close the connection.
func (m *CircuitManager) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	return m.DialIsolated(ctx, isolationFrom(ctx), network, address)
}

// DialIsolated is Dial with an explicit isolation key.
func (m *CircuitManager) DialIsolated(ctx context.Context, key IsolationKey, network, address string) (net.Conn, error) {
	host, port, err := dialAddr(network, address)
	if err != nil {
		return nil, err
	}
	return m.dialOptimistic(ctx, key, host, port)
}

// DialConnected is Dial, except that it returns only once the exit has
// connected to the destination, and no byte of the caller's leaves
// before: a dial that fails sent nothing. It costs a path round trip
// more than Dial; requests that must never be delivered twice, or whose
// failure must say whether they left (a mint's swap), use it.
func (m *CircuitManager) DialConnected(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := dialAddr(network, address)
	if err != nil {
		return nil, err
	}
	return m.dial(ctx, isolationFrom(ctx), host, port, nil)
}

// dialAddr checks a dial's network and splits its address.
func dialAddr(network, address string) (string, uint16, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return "", 0, errkind.Wrap(errkind.Unsupported, fmt.Errorf("client: dial %s: only tcp", network))
	}
	host, ps, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, errkind.Wrap(errkind.Malformed, fmt.Errorf("client: dial: %w", err))
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 || host == "" {
		return "", 0, errkind.New(errkind.Malformed, "client: dial: bad address")
	}
	return host, uint16(port), nil
}

// DialStream implements socks.Dialer: an optimistic request gets a
// connection at once, as Dial's; any other one once the exit has
// connected.
func (m *CircuitManager) DialStream(ctx context.Context, req socks.Request) (net.Conn, error) {
	host := req.Host
	if req.IP.IsValid() {
		host = req.IP.String()
	}
	if req.Optimistic {
		return m.dialOptimistic(ctx, req.Isolation, host, req.Port)
	}
	return m.dial(ctx, req.Isolation, host, req.Port, nil)
}

// dialOptimistic opens a stream without waiting for CONNECTED. On a
// circuit that is ready it sends the BEGIN now, and the first write
// follows it at once. Without one it returns a connection whose first
// write, or optimisticWait, starts the build, so that the first bytes
// ride in the build's flight (0-RTT, 04 §9).
func (m *CircuitManager) dialOptimistic(ctx context.Context, key IsolationKey, host string, port uint16) (net.Conn, error) {
	if _, err := beginBody(host, port); err != nil {
		return nil, beginError(err)
	}
	if m.hasCircuit(key, port) {
		return m.dial(ctx, key, host, port, &firstStream{optimistic: true})
	}
	return newLazyStream(ctx, m, key, host, port), nil
}

// dial opens a stream on a circuit of key whose exit accepts port. A
// circuit that dies under the request is dropped and another one tried.
// With opt, the stream is optimistic and opt.data, if any, is its first
// data (04 §9 bounds what a new circuit's build can carry).
func (m *CircuitManager) dial(ctx context.Context, key IsolationKey, host string, port uint16, opt *firstStream) (net.Conn, error) {
	if _, err := beginBody(host, port); err != nil {
		return nil, beginError(err)
	}
	var lastErr error
	for range m.cfg.BuildAttempts {
		s, mc, err := m.stream(ctx, key, host, port, opt)
		switch {
		case mc == nil:
		case err == nil && opt != nil && opt.optimistic:
			// The exit has not answered yet: path bias counts the
			// stream once it does, or once the circuit dies first.
			s.watchAnswer(func(answered bool) { m.countAnswer(mc, answered) })
		default:
			m.countStream(ctx, mc, err)
		}
		if err == nil {
			return s, nil
		}
		var ee *EndError
		switch {
		case errors.As(err, &ee):
			return nil, errkind.Wrap(ee.ErrorKind(), err)
		case ctx.Err() != nil:
			return nil, errkind.Wrap(errkind.Timeout, err)
		case mc == nil:
			return nil, errkind.Wrap(buildKind(err), err) // build already tried other paths
		}
		lastErr = err
		mc.c.Close() // a circuit that fails a BEGIN is not used again
	}
	return nil, errkind.Wrap(errkind.OtherPath, fmt.Errorf("client: circuits kept failing: %w", lastErr))
}

// beginError is the error of a BEGIN that cannot be sent: a hidden-service
// name is not allowed through an exit (ErrHSName has kind
// NotAllowed); anything else is malformed.
func beginError(err error) error {
	if errors.Is(err, ErrHSName) {
		return err
	}
	return errkind.Wrap(errkind.Malformed, fmt.Errorf("client: %w", err))
}

// endKind is the kind of a stream the exit ended with reason r: the
// destination's or the exit's answer, or, for the rest, a failure of this
// exit or circuit that another may not have.
func endKind(r circuit.EndReason) errkind.Kind {
	switch r {
	case circuit.EndResolveFailed:
		return errkind.NotFound
	case circuit.EndConnectRefused:
		return errkind.Refused
	case circuit.EndExitPolicy:
		return errkind.NotAllowed
	case circuit.EndTimeout:
		return errkind.Timeout
	case circuit.EndNoRoute:
		return errkind.NoRoute
	}
	return errkind.OtherPath
}

// buildKind is the kind of a failure to get a circuit: the manager is
// closed, no path meets the rules yet (wait for the view to grow), or
// every path tried failed.
func buildKind(err error) errkind.Kind {
	switch {
	case errors.Is(err, ErrClosed):
		return errkind.Closed
	case errors.Is(err, ErrNoPath):
		return errkind.Retry
	}
	return errkind.OtherPath
}

// stream opens a stream to host:port for key on the key's current
// circuit while it is fresh, else on a prebuilt one, else on a new one
// whose build carries the BEGIN (and opt's data). Concurrent requests of
// one key share one build. It returns the circuit it tried, if any.
func (m *CircuitManager) stream(ctx context.Context, key IsolationKey, host string, port uint16, opt *firstStream) (*Stream, *managed, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, nil, ErrClosed
		}
		// A build of this key's circuit is under way: wait for it rather
		// than take a prebuilt circuit too, which would give the key two
		// circuits (and two exits).
		if wait, ok := m.pending[key]; ok {
			m.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, nil, errkind.Wrap(errkind.Timeout, fmt.Errorf("client: %w", ctx.Err()))
			}
		}
		if mc := m.takeLocked(key, port); mc != nil {
			m.mu.Unlock()
			s, err := m.open(ctx, mc.c, host, port, opt)
			return s, mc, err
		}
		done := make(chan struct{})
		m.pending[key] = done
		soft := m.otherExitsLocked(key)
		m.mu.Unlock()
		first := &firstStream{host: host, port: port}
		if opt != nil {
			first.data, first.optimistic = opt.data, true
		}
		mc, s, err := m.build(ctx, port, soft, first)
		m.mu.Lock()
		delete(m.pending, key)
		close(done)
		if mc != nil && m.closed {
			mc.c.Close()
			mc, s, err = nil, nil, ErrClosed
		}
		if mc != nil {
			m.assignLocked(mc, key)
			m.circs = append(m.circs, mc)
		}
		m.mu.Unlock()
		return s, mc, err
	}
}

// open opens a stream on a built circuit: with opt, optimistically, its
// data following the BEGIN at once.
func (m *CircuitManager) open(ctx context.Context, c *Circuit, host string, port uint16, opt *firstStream) (*Stream, error) {
	if opt == nil {
		return c.Dial(ctx, host, port)
	}
	s, err := c.DialOptimistic(ctx, host, port)
	if err != nil || len(opt.data) == 0 {
		return s, err
	}
	if _, err := s.Write(opt.data); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// hasCircuit tells whether a stream of key to port would find a built
// circuit now (or fail at once: the manager is closed).
func (m *CircuitManager) hasCircuit(key IsolationKey, port uint16) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return true
	}
	now := m.cfg.Now()
	for _, mc := range m.circs {
		if !mc.usable() || !mc.exit.AcceptsPort(port) {
			continue
		}
		if !mc.dirty || (mc.iso == key && now.Sub(mc.firstUse) < m.cfg.MaxDirtiness) {
			return true
		}
	}
	return false
}

// takeLocked finds a fresh circuit of key for port, or assigns a prebuilt
// one to key, preferring an exit no other key uses. mu is held.
func (m *CircuitManager) takeLocked(key IsolationKey, port uint16) *managed {
	now := m.cfg.Now()
	var clean, cleanShared *managed
	others := m.otherExitsLocked(key)
	for _, mc := range m.circs {
		switch {
		case !mc.usable() || !mc.exit.AcceptsPort(port):
		case mc.dirty && mc.iso == key && now.Sub(mc.firstUse) < m.cfg.MaxDirtiness:
			return mc
		case !mc.dirty && others[mc.exit.PeerID] && cleanShared == nil:
			cleanShared = mc
		case !mc.dirty && !others[mc.exit.PeerID] && clean == nil:
			clean = mc
		}
	}
	if clean == nil {
		clean = cleanShared
	}
	if clean != nil {
		// Run replaces it at its next tick: building now would compete
		// with this request for the CPU of every relay on the way.
		m.assignLocked(clean, key)
	}
	return clean
}

func (m *CircuitManager) assignLocked(mc *managed, key IsolationKey) {
	mc.dirty, mc.iso, mc.firstUse = true, key, m.cfg.Now()
}

// exitsLocked returns the exits of live circuits. mu is held.
func (m *CircuitManager) exitsLocked() map[peer.ID]bool {
	out := map[peer.ID]bool{}
	for _, mc := range m.circs {
		if mc.c.Err() == nil {
			out[mc.exit.PeerID] = true
		}
	}
	return out
}

// otherExitsLocked returns the exits of live circuits of other keys. mu
// is held.
func (m *CircuitManager) otherExitsLocked(key IsolationKey) map[peer.ID]bool {
	out := map[peer.ID]bool{}
	for _, mc := range m.circs {
		if mc.dirty && mc.iso != key && mc.c.Err() == nil {
			out[mc.exit.PeerID] = true
		}
	}
	return out
}
