package dht

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// ErrUnreachable means the relay has no address that other peers
// confirmed they can dial: it must not publish itself as a relay.
var ErrUnreachable = errors.New("dht: no address confirmed reachable by other peers")

// Defaults of a reachability check (specs/02-dht.md §Reachability).
const (
	DefaultReachConfirmations = 3
	DefaultReachInterval      = 30 * time.Minute
	// reachRetry is how soon a check that could not reach a verdict
	// (too few peers to ask) is tried again. AutoNAT v2 asks each
	// server at most once per two minutes.
	reachRetry = 30 * time.Second
)

// ReachConfig configures a relay's reachability check.
type ReachConfig struct {
	// Confirmations is how many distinct peers must dial the relay back
	// at an address before it is published (default 3).
	Confirmations int
	// AllowPrivate checks private and loopback addresses and dials them
	// back for others: for test networks only. Without it only public
	// addresses can be confirmed.
	AllowPrivate bool
	// Interval is how often the check runs again (default 30 min).
	Interval time.Duration
	// Addrs are the addresses to check (default: the host's addresses).
	Addrs func() []ma.Multiaddr
	// NATObservers is how many peers with distinct IP addresses must
	// report where they see the relay's UDP socket before it classifies
	// its NAT (default DefaultNATObservers).
	NATObservers int
	// Changed is called after the first verdict, whenever the set of
	// confirmed addresses changes, and whenever the NAT's class does.
	Changed func()
	Logger  *slog.Logger // default: discard
}

// Reach checks, with AutoNAT v2, which of a relay's addresses other
// peers can dial, and serves the same check to them. A peer asked to
// check an address dials it back from a separate host and proves the dial
// with a nonce, so a success cannot be forged; a failure can be (a peer
// may lie that it could not dial), and the check needs successes from
// several distinct peers, so that one peer — or one that shares the
// relay's side of a NAT — cannot confirm an address alone. It also
// classifies the NAT in front of the relay (NAT) from the addresses peers
// observe its UDP socket at.
type Reach struct {
	cfg    ReachConfig
	h      host.Host
	dialer host.Host
	an     *autonatv2.AutoNAT
	em     event.Emitter // the verdicts, on h's event bus

	mu        sync.Mutex // guards the fields below
	checked   bool       // a verdict was reached at least once
	confirmed []ma.Multiaddr
	nat       *natClassifier
	natLogged NATType // the class last logged and reported
	started   bool    // the AutoNAT v2 service is attached to h
	closed    bool
	idSub     event.Subscription // identify results, from start on
}

// NewReach prepares the check for host h: AutoNAT v2's client and server
// and the separate host that dials back. It contacts no peer; Run starts
// serving and checking.
func NewReach(h host.Host, cfg ReachConfig) (*Reach, error) {
	if cfg.Confirmations < 0 || cfg.Interval < 0 || cfg.NATObservers < 0 {
		return nil, errors.New("dht: negative reachability setting")
	}
	if cfg.Confirmations == 0 {
		cfg.Confirmations = DefaultReachConfirmations
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultReachInterval
	}
	if cfg.NATObservers == 0 {
		cfg.NATObservers = DefaultNATObservers
	}
	if cfg.Addrs == nil {
		cfg.Addrs = h.Addrs
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dialer, err := newDialerHost()
	if err != nil {
		return nil, err
	}
	var opts []autonatv2.AutoNATOption
	if cfg.AllowPrivate {
		opts = append(opts, autonatv2.AllowPrivateAddrs)
	}
	an, err := autonatv2.New(dialer, opts...)
	if err != nil {
		dialer.Close()
		return nil, fmt.Errorf("dht: autonat v2: %w", err)
	}
	// The verdict goes on h's event bus, where a DHT node in ModeAuto
	// learns whether to serve queries; stateful, so that a node opened
	// later learns the last one.
	em, err := h.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful)
	if err != nil {
		an.Close()
		return nil, fmt.Errorf("dht: reachability emitter: %w", err)
	}
	return &Reach{cfg: cfg, h: h, dialer: dialer, an: an, em: em, nat: newNATClassifier(cfg.NATObservers)}, nil
}

// newDialerHost is the host that dials other peers back: a fresh
// identity and no listener, so a dial-back never reuses a connection the
// checked peer opened.
func newDialerHost() (host.Host, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(k),
		libp2p.NoListenAddrs,
		libp2p.Transport(quic.NewTransport),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.DisableIdentifyAddressDiscovery(),
	)
	if err != nil {
		return nil, fmt.Errorf("dht: autonat dial-back host: %w", err)
	}
	return h, nil
}

// Confirmed are the addresses that enough distinct peers dialed back in
// the last check; nil before the first verdict or when none was.
func (r *Reach) Confirmed() []ma.Multiaddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.confirmed)
}

// Checked reports whether a check has reached a verdict, and if so
// whether the relay is reachable.
func (r *Reach) Checked() (checked, reachable bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checked, len(r.confirmed) > 0
}

// Run serves checks to other peers and checks this relay's addresses
// every Interval (sooner while too few peers answered for a verdict),
// until ctx ends. It then closes the service and returns nil. It must
// start before the host connects to peers: AutoNAT v2 learns of servers
// from connection and identify events only.
func (r *Reach) Run(ctx context.Context) error {
	defer r.Close()
	if err := r.start(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { r.observe(ctx) })
	t := time.NewTimer(time.Second) // let the first connections identify
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		next := r.cfg.Interval
		if !r.checkOnce(ctx) {
			next = reachRetry
		}
		t.Reset(next)
	}
}

func (r *Reach) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("dht: reachability check closed")
	}
	sub, err := r.h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return fmt.Errorf("dht: identify subscription: %w", err)
	}
	if err := r.an.Start(r.h); err != nil {
		sub.Close()
		return fmt.Errorf("dht: autonat v2: %w", err)
	}
	r.idSub = sub
	r.started = true
	return nil
}

// Close stops the service and the dial-back host. It is idempotent.
func (r *Reach) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.em.Close()
	if r.idSub != nil {
		r.idSub.Close()
	}
	if r.started {
		r.an.Close() // closes the dialer too
		return nil
	}
	return r.dialer.Close()
}

// checkOnce checks every candidate address and records the verdict; it
// reports false when too few peers answered to decide.
func (r *Reach) checkOnce(ctx context.Context) bool {
	t := newReachTally(r.candidates(), r.cfg.Confirmations)
	for !t.done() && ctx.Err() == nil {
		res, err := r.an.GetReachability(ctx, t.requests())
		if err != nil {
			if errors.Is(err, autonatv2.ErrNoPeers) || errors.Is(err, autonatv2.ErrPrivateAddrs) {
				break // every server was asked in this round
			}
			r.cfg.Logger.Debug("reachability probe failed", "err", err)
			continue // that server is now throttled; the next is another
		}
		if !res.AllAddrsRefused {
			t.add(res.Addr, res.Reachability)
		}
	}
	if ctx.Err() != nil {
		return true
	}
	decided := t.done()
	conf := t.confirmed()
	r.mu.Lock()
	changed := !r.checked || !slices.EqualFunc(conf, r.confirmed, ma.Multiaddr.Equal)
	if decided || len(conf) > 0 {
		r.checked = true
		r.confirmed = conf
	}
	r.mu.Unlock()
	if decided || len(conf) > 0 {
		r.cfg.Logger.Info("reachability checked", "reachable", len(conf) > 0,
			"confirmed", len(conf), "candidates", len(t.addrs))
		verdict := network.ReachabilityPrivate
		if len(conf) > 0 {
			verdict = network.ReachabilityPublic
		}
		r.em.Emit(event.EvtLocalReachabilityChanged{Reachability: verdict})
	}
	if changed && (decided || len(conf) > 0) && r.cfg.Changed != nil {
		r.cfg.Changed()
	}
	r.classified()
	return decided
}

// candidates are the addresses worth checking: public ones, and private
// and loopback ones only when the configuration allows them.
func (r *Reach) candidates() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range r.cfg.Addrs() {
		switch {
		case manet.IsIPUnspecified(a):
		case !r.cfg.AllowPrivate && !manet.IsPublicAddr(a):
		default:
			if !slices.ContainsFunc(out, a.Equal) {
				out = append(out, a)
			}
		}
	}
	return out
}

// reachTally counts, per candidate address, the dial-backs that
// succeeded and failed. An address is confirmed after need successes
// and refuted after need failures; each answer comes from a different
// peer, since AutoNAT v2 asks a server at most once per two minutes.
type reachTally struct {
	addrs    []ma.Multiaddr
	ok, fail []int
	need     int
}

func newReachTally(addrs []ma.Multiaddr, need int) *reachTally {
	return &reachTally{addrs: addrs, ok: make([]int, len(addrs)), fail: make([]int, len(addrs)), need: need}
}

func (t *reachTally) decided(i int) bool { return t.ok[i] >= t.need || t.fail[i] >= t.need }

func (t *reachTally) done() bool {
	for i := range t.addrs {
		if !t.decided(i) {
			return false
		}
	}
	return true
}

// requests lists the undecided addresses first: a server dials the
// first address of a request it is able to.
func (t *reachTally) requests() []autonatv2.Request {
	var open, rest []autonatv2.Request
	for i, a := range t.addrs {
		req := autonatv2.Request{Addr: a, SendDialData: true}
		if t.decided(i) {
			rest = append(rest, req)
		} else {
			open = append(open, req)
		}
	}
	return append(open, rest...)
}

func (t *reachTally) add(a ma.Multiaddr, r network.Reachability) {
	i := slices.IndexFunc(t.addrs, a.Equal)
	if i < 0 {
		return
	}
	switch r {
	case network.ReachabilityPublic:
		t.ok[i]++
	case network.ReachabilityPrivate:
		t.fail[i]++
	}
}

// confirmed are the addresses with enough successes.
func (t *reachTally) confirmed() []ma.Multiaddr {
	var out []ma.Multiaddr
	for i, a := range t.addrs {
		if t.ok[i] >= t.need {
			out = append(out, a)
		}
	}
	return out
}

// NAT is the relay's class: NATPublic once a check confirmed an address;
// after a check that confirmed none, what the observed addresses say
// (NATCone, NATSymmetric, or NATUnknown while too few peers reported);
// NATUnknown before the first verdict.
func (r *Reach) NAT() NATType {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.natLocked()
}

func (r *Reach) natLocked() NATType {
	switch {
	case !r.checked:
		return NATUnknown
	case len(r.confirmed) > 0:
		return NATPublic
	default:
		return r.nat.verdict()
	}
}

// observe feeds the classifier with where peers see this host's UDP
// socket, from identify, until ctx ends or the subscription closes.
func (r *Reach) observe(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-r.idSub.Out():
			if !ok {
				return
			}
			id := e.(event.EvtPeerIdentificationCompleted)
			if id.Conn == nil || id.Conn.Stat().Limited {
				continue
			}
			r.mu.Lock()
			r.nat.add(id.Conn.RemoteMultiaddr(), id.ObservedAddr)
			r.mu.Unlock()
			r.classified()
		}
	}
}

// classified logs the NAT's class, and reports it through Changed, when
// it differs from the one last logged.
func (r *Reach) classified() {
	r.mu.Lock()
	t := r.natLocked()
	news := t != NATUnknown && t != r.natLogged
	if news {
		r.natLogged = t
	}
	r.mu.Unlock()
	if !news {
		return
	}
	r.cfg.Logger.Info("NAT classified", "nat", t.String())
	if r.cfg.Changed != nil {
		r.cfg.Changed()
	}
}
