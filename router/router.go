// Package router is the relay side of obol: it accepts circuits on link
// channels, runs each hop's handshake and layer, forwards cells to the
// next hop, and at an exit opens TCP streams under the exit policy.
// Payments plug in through the Meter interface. specs/06-router.md is the
// processing definition.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/link"
)

// Directory tells a relay where the next hop of a circuit is. The relay
// side looks relays up by peer ID (in the DHT or its own cache); a client
// never tells it addresses.
type Directory interface {
	AddrInfo(ctx context.Context, id peer.ID) (peer.AddrInfo, error)
}

// RelayChecker is implemented by a Directory that knows, from memory and
// at once, which peers are relays (the relay's view). A previous hop that
// is a relay carries many clients' circuits: the per-peer rate of CREATEs
// and the per-peer and per-channel caps, which bound one client, do not
// apply to it; MaxCircuitsPerRelay and the relay-wide limits do. Without
// it, an attacker's own circuits through a relay would fill that relay's
// channel to the next one and shut every honest circuit out of the pair.
type RelayChecker interface {
	IsRelay(id peer.ID) bool
}

// Config configures a Router.
type Config struct {
	// OnionKeys are the accepted onion keys, newest first.
	OnionKeys []circuit.OnionKey
	// Directory resolves next hops. Required.
	Directory Directory
	// Exit is the exit policy; nil means this relay is not an exit. Unless
	// it was built with RejectRelayAddrs, the router adds a check that
	// refuses the TCP listening addresses of the peers in its host's
	// peerstore (the relays it knows).
	Exit *ExitPolicy
	// Dial opens TCP connections for exit streams (default net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// NoFastOpen keeps the default Dial from asking for TCP Fast Open. With
	// it (Linux), a connection to a server that gave the exit a cookie
	// before is up at once and its first data rides in the SYN: a
	// server that refuses it is then seen at the first read, as a reset
	// (END CONNECTREFUSED), not at the connect.
	NoFastOpen bool
	// ConnectTimeout bounds a next-hop dial and an exit connect (10 s).
	ConnectTimeout time.Duration
	// MaxCircuits bounds the circuits this relay carries (default 20000).
	MaxCircuits int
	// MaxCircuitsPerPeer and MaxCircuitsPerChannel bound the circuits one
	// previous hop holds, over all its channels and on one channel
	// (DefaultMaxCircuitsPerPeer, DefaultMaxCircuitsPerChannel).
	MaxCircuitsPerPeer    int
	MaxCircuitsPerChannel int
	// MaxCircuitsPerRelay bounds the circuits one previous hop that is a
	// relay (see RelayChecker) holds, over all its channels (default
	// MaxCircuits/2).
	MaxCircuitsPerRelay int
	// MaxStreams bounds exit streams per circuit (default 512).
	MaxStreams int
	// CreateRate and CreateBurst limit the circuits one peer may start
	// (defaults DefaultCreateRate per second, DefaultCreateBurst);
	// CreateRateTotal and CreateBurstTotal limit those all peers together
	// may start (DefaultCreateRateTotal, DefaultCreateBurstTotal). A
	// negative CreateRate means no limit at all, a negative
	// CreateRateTotal no relay-wide limit.
	CreateRate       float64
	CreateBurst      int
	CreateRateTotal  float64
	CreateBurstTotal int
	// MaxExitStreams bounds the exit streams of the whole relay (default
	// DefaultMaxExitStreams).
	MaxExitStreams int
	// IdleTimeout destroys a circuit that has moved no cell for this long
	// (default 30 min), so abandoned circuits do not pile up. Under
	// pressure — the circuit table or, with MemoryBudget, the heap more
	// than half full — it shrinks linearly down to MinIdleTimeout
	// (DefaultMinIdleTimeout) at full pressure.
	IdleTimeout    time.Duration
	MinIdleTimeout time.Duration
	// MemoryBudget, if set, is the heap size in bytes the relay should
	// stay under; MemoryInUse reports the current size (default: the Go
	// runtime's heap objects).
	MemoryBudget uint64
	MemoryInUse  func() uint64
	// StreamIdleTimeout ends an exit stream that has moved no data either
	// way for this long (default 1 h: idle interactive sessions are
	// normal, abandoned ones should not hold sockets forever).
	StreamIdleTimeout time.Duration
	// Meter meters and pauses circuits for payment; nil means free.
	Meter Meter
	// Links, if set, is the link manager to serve on (a node that is
	// also a client shares one). Otherwise the router makes its own with
	// the limits of Link (its OnCreate and Logger are the router's).
	Links  *link.Manager
	Link   link.Config
	Logger *slog.Logger
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case len(c.OnionKeys) == 0:
		return errors.New("router: no onion key")
	case c.Directory == nil:
		return errors.New("router: no directory")
	case c.ConnectTimeout < 0, c.MaxCircuits < 0, c.MaxStreams < 0, c.MaxExitStreams < 0, c.IdleTimeout < 0, c.StreamIdleTimeout < 0,
		c.MaxCircuitsPerPeer < 0, c.MaxCircuitsPerChannel < 0, c.MaxCircuitsPerRelay < 0, c.MinIdleTimeout < 0:
		return errors.New("router: negative limit")
	case c.MinIdleTimeout > 0 && c.IdleTimeout > 0 && c.MinIdleTimeout > c.IdleTimeout:
		return errors.New("router: MinIdleTimeout longer than IdleTimeout")
	}
	return nil
}

func (c *Config) defaults() {
	if c.Dial == nil {
		var d net.Dialer
		if !c.NoFastOpen {
			d.Control = fastOpen
		}
		c.Dial = d.DialContext
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.MaxCircuits == 0 {
		c.MaxCircuits = 20000
	}
	if c.MaxCircuitsPerRelay == 0 {
		c.MaxCircuitsPerRelay = max(c.MaxCircuits/2, 1)
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.CreateRate == 0 {
		c.CreateRate = DefaultCreateRate
	}
	if c.CreateBurst == 0 {
		c.CreateBurst = DefaultCreateBurst
	}
	if c.CreateRateTotal == 0 {
		c.CreateRateTotal = DefaultCreateRateTotal
	}
	if c.CreateBurstTotal == 0 {
		c.CreateBurstTotal = DefaultCreateBurstTotal
	}
	if c.MaxExitStreams == 0 {
		c.MaxExitStreams = DefaultMaxExitStreams
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.MinIdleTimeout == 0 {
		c.MinIdleTimeout = min(DefaultMinIdleTimeout, c.IdleTimeout)
	}
	if c.MaxCircuitsPerPeer == 0 {
		c.MaxCircuitsPerPeer = DefaultMaxCircuitsPerPeer
	}
	if c.MaxCircuitsPerChannel == 0 {
		c.MaxCircuitsPerChannel = DefaultMaxCircuitsPerChannel
	}
	if c.MemoryInUse == nil {
		c.MemoryInUse = heapInUse
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Router is a relay's circuit machinery.
type Router struct {
	host  host.Host
	cfg   Config
	relay *circuit.Responder
	links *link.Manager
	own   bool // the router made links and closes it

	creates         *createLimiter
	forwarded       atomic.Uint64 // cells passed on to another hop
	streams         atomic.Int64  // exit streams open
	failedCreates   atomic.Uint64 // CREATEs whose handshake failed
	refusedStreams  atomic.Uint64 // BEGINs over a stream limit
	refusedCircuits atomic.Uint64 // CREATEs over the circuit table or a peer's or channel's cap
	paddingSent     atomic.Uint64 // circuit padding cells sent (padding.go)
	paddingRefused  atomic.Uint64 // machine halves stopped at the padding budget

	mu      sync.Mutex // guards circs and caps
	circs   map[*hop]struct{}
	caps    *circuitCaps
	closing bool
	work    sync.WaitGroup // exit stream goroutines

	hidden hiddenPoints // intro and rendezvous registrations (hidden.go)
}

// replayEntries bounds the replay cache so that the creates the relay-wide
// limit admits cannot fill it: a create minute's set is held while the
// relay's clock moves through 2·MaxCreateSkew and that minute, and one
// more minute's set fills meanwhile (circuit.ReplayCache). Without a
// relay-wide limit the default bound stands, and a flood past it is
// refused (resource-limit), never forgotten.
func replayEntries(cfg Config) int {
	if cfg.CreateRateTotal <= 0 {
		return circuit.DefaultReplayEntries
	}
	window := 2*circuit.MaxCreateSkew + 2*time.Minute
	return max(circuit.DefaultReplayEntries, int(cfg.CreateRateTotal*window.Seconds())+cfg.CreateBurstTotal)
}

// New returns a router on h. It starts nothing; call Run.
func New(h host.Host, cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	if h != nil {
		cfg.Exit = cfg.Exit.withRelayAddrs(peerstoreRelayAddrs(h.Peerstore()))
	}
	relay, err := circuit.NewResponder(circuit.ResponderConfig{ReplayEntries: replayEntries(cfg)}, cfg.OnionKeys)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r := &Router{host: h, cfg: cfg, relay: relay, circs: map[*hop]struct{}{},
		caps:    newCircuitCaps(cfg.MaxCircuitsPerPeer, cfg.MaxCircuitsPerChannel, cfg.MaxCircuitsPerRelay),
		creates: newCreateLimiter(cfg.CreateRate, cfg.CreateBurst, cfg.CreateRateTotal, cfg.CreateBurstTotal)}
	r.links = cfg.Links
	if r.links == nil {
		lc := cfg.Link
		lc.OnCreate, lc.Logger = r.onCreate, cfg.Logger
		r.links = link.NewManager(h, lc)
		r.own = true
	}
	return r, nil
}

// OnCreate is the link.CreateFunc of this router, for a link manager the
// caller built (Config.Links).
func (r *Router) OnCreate(ch *link.Channel, id uint32) link.Handler { return r.onCreate(ch, id) }

// Links is the link manager the router serves on.
func (r *Router) Links() *link.Manager { return r.links }

// SetOnionKeys replaces the accepted onion keys (newest first).
func (r *Router) SetOnionKeys(keys []circuit.OnionKey) error { return r.relay.SetOnionKeys(keys) }

// Run serves circuits until ctx ends, then tears every circuit down and
// returns once all of the router's goroutines have ended.
func (r *Router) Run(ctx context.Context) error {
	if r.own {
		r.links.Start()
	}
	r.reapIdle(ctx)
	r.mu.Lock()
	r.closing = true
	hops := make([]*hop, 0, len(r.circs))
	for h := range r.circs {
		hops = append(hops, h)
	}
	r.mu.Unlock()
	for _, h := range hops {
		h.destroy(circuit.DestroyHibernating)
	}
	if r.own {
		r.links.Close()
	}
	r.work.Wait()
	return nil
}

// reapIdle destroys idle circuits until ctx ends.
func (r *Router) reapIdle(ctx context.Context) {
	t := time.NewTicker(max(min(r.cfg.MinIdleTimeout, r.cfg.StreamIdleTimeout)/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, h := range r.idle(now.Add(-r.currentIdleTimeout())) {
				if h.mu.TryLock() { // a busy hop is not idle; see reapStreams
					h.destroyLocked(circuit.DestroyTimeout)
					h.mu.Unlock()
				}
			}
			r.reapStreams(now.Add(-r.cfg.StreamIdleTimeout))
		}
	}
}

// reapStreams ends the exit streams that have moved no data since before.
// It passes a hop whose lock is held: an extend holds its hop's lock while
// it dials the next relay, up to ConnectTimeout, and waiting for it would
// hold up every other circuit's reaping. A busy hop is reaped at a later
// tick.
func (r *Router) reapStreams(before time.Time) {
	for _, h := range r.hops() {
		if !h.mu.TryLock() {
			continue
		}
		if h.exit != nil && !h.closed {
			h.exit.reapIdle(before.UnixNano())
		}
		h.mu.Unlock()
	}
}

// currentIdleTimeout is the idle timeout at the present pressure.
func (r *Router) currentIdleTimeout() time.Duration {
	r.mu.Lock()
	n := len(r.circs)
	r.mu.Unlock()
	return idleTimeout(r.cfg.IdleTimeout, r.cfg.MinIdleTimeout, r.pressure(n))
}

// idle returns the circuits that have moved no cell since before.
func (r *Router) idle(before time.Time) []*hop {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*hop
	for h := range r.circs {
		if h.lastActive.Load() < before.UnixNano() {
			out = append(out, h)
		}
	}
	return out
}

// isRelay reports whether p is a relay in the directory (RelayChecker).
func (r *Router) isRelay(p peer.ID) bool {
	rc, ok := r.cfg.Directory.(RelayChecker)
	return ok && rc.IsRelay(p)
}

// onCreate admits a new circuit unless the relay is full or closing.
func (r *Router) onCreate(ch *link.Channel, id uint32) link.Handler {
	r.mu.Lock()
	defer r.mu.Unlock()
	relay := r.isRelay(ch.Remote())
	if !r.creates.allow(ch.Remote(), relay) {
		return nil // a peer over its rate is not answered: that would cost more
	}
	if r.closing || len(r.circs) >= r.cfg.MaxCircuits || !r.caps.admit(ch.Remote(), ch, relay) {
		r.refusedCircuits.Add(1)
		go refuse(ch, id, circuit.DestroyResourceLimit)
		return nil
	}
	h := newHop(r, ch.Remote())
	h.prevChan = ch
	r.circs[h] = struct{}{}
	return h
}

func refuse(ch *link.Channel, id uint32, why circuit.DestroyReason) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch.SendRaw(ctx, id, circuit.CmdDestroy, circuit.DestroyPayload(why))
}

func (r *Router) forget(h *hop) {
	r.mu.Lock()
	if _, ok := r.circs[h]; ok {
		delete(r.circs, h)
		r.caps.release(h.prevPeer, h.prevChan)
	}
	r.mu.Unlock()
}

// Stats is a snapshot of what the router carries and refused.
type Stats struct {
	Circuits        int
	Streams         int64
	Forwarded       uint64
	RefusedCreates  uint64 // over a peer's or the relay's rate
	FailedCreates   uint64 // handshakes that failed (garbage, replays)
	RefusedStreams  uint64 // BEGINs over the circuit's or the relay's limit
	RefusedCircuits uint64 // CREATEs over MaxCircuits or a peer's or channel's cap
	PaddingSent     uint64 // circuit padding (DROP) cells sent by machine halves
	PaddingRefused  uint64 // machine halves stopped at a circuit's padding budget
	Link            link.Stats
}

// Stats returns the current counts.
func (r *Router) Stats() Stats {
	r.mu.Lock()
	n := len(r.circs)
	r.mu.Unlock()
	st := Stats{Circuits: n, Streams: r.streams.Load(), Forwarded: r.forwarded.Load(),
		FailedCreates: r.failedCreates.Load(), RefusedStreams: r.refusedStreams.Load(),
		RefusedCircuits: r.refusedCircuits.Load(), Link: r.links.Stats(),
		PaddingSent: r.paddingSent.Load(), PaddingRefused: r.paddingRefused.Load()}
	if r.creates != nil {
		st.RefusedCreates = r.creates.refused.Load()
	}
	return st
}

// Knowledge is everything a relay keeps about one circuit's path: the
// previous and the next hop, nothing else.
type Knowledge struct {
	Prev, Next peer.ID
}

// Circuits returns what the relay knows of each circuit it carries.
func (r *Router) Circuits() []Knowledge {
	hops := r.hops()
	out := make([]Knowledge, 0, len(hops))
	for _, h := range hops {
		out = append(out, h.knowledge())
	}
	return out
}

// hops snapshots the circuits. A hop's lock is never taken while r.mu is
// held: a hop being destroyed holds its own lock and then takes r.mu.
func (r *Router) hops() []*hop {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*hop, 0, len(r.circs))
	for h := range r.circs {
		out = append(out, h)
	}
	return out
}
