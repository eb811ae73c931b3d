// Package node wires obol's layers into the processes the obol command
// runs: a relay (keys in a data directory, a DHT server, a publisher of its
// descriptor) and a client that samples relays into a persistent cache.
// Only cmd and tests import it.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/status"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/router"
)

// Relay is a running relay: its host listens from OpenRelay on; Run joins
// the DHT and keeps the descriptor published.
type Relay struct {
	cfg      RelayConfig
	host     host.Host
	node     *dht.Node
	pub      *dht.Publisher
	gossip   *view.Gossip // spreads descriptors; its set is the router's directory
	desc     *describer
	keys     *onionKeyring
	router   *router.Router
	pay      *pay.Payee     // nil for a free relay
	payments *RelayPayments // nil for a free relay
	mint     *relayMint     // the way to the mint through circuits; nil without
	mintRun  mintRunner
	reach    *dht.Reach // nil on loopback
	nat      *natRole   // what the NAT's class lets the relay do; nil on loopback

	closeOnce sync.Once
	closeErr  error
}

// OpenRelay loads (or creates) the relay's keys in cfg.DataDir and starts
// its libp2p host and DHT node. It does not contact any peer.
func OpenRelay(cfg RelayConfig) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	if err := prepareDataDir(c.DataDir, c.Logger); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	key, err := loadIdentity(c.DataDir)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	keys, err := loadOnionKeyring(filepath.Join(c.DataDir, OnionKeyFile), c.OnionRotation, c.Lifetime, c.Now())
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	exit, err := c.exitPolicy()
	if err != nil {
		return nil, err
	}
	h, err := dht.NewHost(dht.HostConfig{Identity: key, Listen: c.Listen,
		MaxConns: relayMaxConns, ConnLow: relayMaxConns / 8, ConnHigh: relayMaxConns / 4,
		HolePunch: !loopbackListen(c.Listen)})
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	// A relay that checks its addresses serves DHT queries only while it
	// is not found unreachable: peers would fill their routing tables
	// with a node they cannot dial.
	mode := dht.ModeServer
	if !loopbackOnly(h) && !c.SkipReachCheck {
		mode = dht.ModeAuto
	}
	n, err := dht.Open(h, dht.Config{Mode: mode, Bootstrap: c.Bootstrap, Logger: c.Logger, Now: c.Now})
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	var rcv *pay.Payee
	var payments *RelayPayments
	// A relay extends circuits only to relays in its view: a next hop is
	// never looked up in the DHT, which would learn the circuit's hops.
	// The view also tells the router which previous hops are relays
	// (router.RelayChecker), so that clients' caps do not apply to them.
	gossip := view.NewGossip(h, view.NewSet(c.Now), view.GossipConfig{Bootstrap: c.Bootstrap, Now: c.Now, Logger: c.Logger})
	// A restarted relay takes up the view it saved: it extends circuits
	// at once, not only after its first sync (a relay extends only to
	// relays in its view), and syncs from the relays it knew.
	if n, err := loadView(gossip.Set(), filepath.Join(c.DataDir, ViewFile)); err != nil {
		c.Logger.Warn("saved view not read; starting with an empty one", "err", err)
	} else if n > 0 {
		c.Logger.Info("loaded the saved view", "relays", n)
	}
	rcfg := router.Config{
		OnionKeys:  keys.CircuitKeys(c.Now()),
		Directory:  gossip.Set(),
		Exit:       exit,
		Dial:       c.ExitDial,
		NoFastOpen: c.ExitNoFastOpen,
		Logger:     c.Logger,
	}
	if c.NoLinkPadding {
		rcfg.Link.Padding.Mode = link.PaddingOff
	}
	// A relay found public asks a relay behind a NAT it extends to for a
	// callback (dht.RequestCallback) rather than a relayed connection.
	var self *Relay // set before Run, which starts every extend
	public := func() bool {
		return self != nil && self.reach != nil && self.nat != nil && self.reach.NAT() == dht.NATPublic
	}
	rcfg.Link.Callback = func(ctx context.Context, rdv peer.AddrInfo, target peer.ID) error {
		if !public() {
			return errNotPublic
		}
		return dht.RequestCallback(ctx, h, rdv, target)
	}
	rcfg.Link.Forwarders = func(target peer.ID) []peer.AddrInfo {
		if !public() {
			return nil
		}
		return self.nat.callbackForwarders(target)
	}
	var mint *relayMint
	var pub *dht.Publisher // set below, before Run can call onLoaded
	if c.Payment != nil {
		p := *c.Payment
		if p.Transport == nil && !p.DirectMintConnectionUnsafe {
			if mint, err = openRelayMint(c, h.ID(), gossip.Set(), h.Network().ListenAddresses()); err != nil {
				n.Close()
				h.Close()
				return nil, err
			}
			p.Transport = mint.transport()
		}
		ctx, cancel := context.WithTimeout(context.Background(), mintTimeout)
		payments = &RelayPayments{}
		rcv, err = pay.OpenPayee(ctx, c.DataDir, p, pay.PayeeOptions{Now: c.Now, Logger: c.Logger, OnSettled: payments.OnSettled,
			OnLoaded: func() {
				c.Logger.Info("reached the mint through circuits; accepting payment channels")
				pub.Changed()
			}})
		cancel()
		if err != nil {
			if mint != nil {
				mint.close()
			}
			n.Close()
			h.Close()
			return nil, err
		}
		payments.Ledger, payments.Meter = rcv.Ledger(), rcv.Meter()
		rcfg.Meter = rcv.Meter()
	}
	rt, err := router.New(h, rcfg)
	if err != nil {
		if rcv != nil {
			rcv.Close()
		}
		if mint != nil {
			mint.close()
		}
		n.Close()
		h.Close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	// The relay answers hidden-service descriptor fetches and stores
	// that arrive at the end of a circuit from its own DHT node.
	rt.SetHSDirectory(hidden.DHTDirectory{Node: n})
	ann, _ := announced(c.Announce) // checked by Validate
	d := &describer{key: key, host: h, announce: ann, keys: keys, exit: exit, cfg: c}
	if rcv != nil {
		d.terms = rcv.Terms
	}
	pub = dht.NewPublisher(n, d.sign, c.Republish)
	pub.AlsoPublish(gossip.Publish)
	r := &Relay{cfg: c, host: h, node: n, desc: d, keys: keys, router: rt, pay: rcv, payments: payments,
		mint: mint, pub: pub, gossip: gossip}
	self = r
	// Every relay off loopback checks its addresses and dials others
	// back for theirs; only a relay that skips the check publishes
	// addresses nobody confirmed.
	if !loopbackOnly(h) {
		r.nat = newNATRole(h, c, r.pub.Changed)
		r.nat.view = gossip.Set().Relays
		r.reach, err = dht.NewReach(h, dht.ReachConfig{AllowPrivate: c.ReachPrivate,
			Addrs: d.candidates, Changed: r.reachChanged, Logger: c.Logger})
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("relay: %w", err)
		}
		r.nat.reach = r.reach
		if !c.SkipReachCheck {
			d.reach = r.reach
			d.nat = r.nat
		}
	}
	return r, nil
}

// errNotPublic: a relay not found publicly reachable asks no callbacks.
var errNotPublic = errors.New("relay: not found public; no callback")

// loopbackListen reports whether every listen address is on loopback.
func loopbackListen(listen []string) bool {
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil || !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true // none: the default, on loopback
}

// loopbackOnly reports whether h listens on loopback addresses alone: a
// local test network, which no peer elsewhere could check or reach.
func loopbackOnly(h host.Host) bool {
	for _, a := range h.Network().ListenAddresses() {
		if !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}

// mintTimeout bounds a paid relay's first contact with its mint.
const mintTimeout = 30 * time.Second

// Payments is the relay's payment figures for the status page and
// metrics; nil for a free relay.
func (r *Relay) Payments() status.PaymentSource {
	if r.pay == nil {
		return nil
	}
	return r.payments
}

// MintReady is closed once a paid relay has its mint's keyset and
// accepts channels (at once over a direct connection; through circuits,
// once Run has reached the mint); already closed for a free relay.
func (r *Relay) MintReady() <-chan struct{} {
	if r.pay == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	return r.pay.Loaded()
}

// Balance is what the relay's wallet holds from settled channels, in the
// mint's unit; 0 for a free relay.
func (r *Relay) Balance() uint64 {
	if r.pay == nil {
		return 0
	}
	return r.pay.Balance()
}

// relayMaxConns sizes a relay's resource manager: thousands of clients
// and relays may hold a connection to it.
const relayMaxConns = 8192

// ID is the relay's peer ID.
func (r *Relay) ID() peer.ID { return r.host.ID() }

// View is the relay's view of the network.
func (r *Relay) View() *view.Set { return r.gossip.Set() }

// Node is the relay's DHT node.
func (r *Relay) Node() *dht.Node { return r.node }

// Addrs are the relay's addresses (announced, or else listen addresses;
// it publishes those of them that peers confirmed) with its /p2p/ peer ID
// appended, as other nodes pass them to --bootstrap.
func (r *Relay) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: r.ID(), Addrs: r.desc.candidates()})
	if err != nil {
		return nil
	}
	return addrs
}

// AddrInfo is the relay's peer ID and listen addresses.
func (r *Relay) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: r.ID(), Addrs: r.host.Addrs()}
}

// Run joins the DHT through the bootstrap peers (retrying until one
// answers) and publishes the descriptor on start, on every republish
// interval, until ctx ends. It returns nil when ctx is cancelled.
func (r *Relay) Run(ctx context.Context) error {
	log := r.cfg.Logger
	var wg sync.WaitGroup
	if r.reach != nil {
		// Before joining: the check learns of AutoNAT servers as they
		// connect and identify.
		wg.Go(func() { _ = r.reach.Run(ctx) })
		wg.Go(func() { r.nat.run(ctx) })
	}
	if r.mint != nil {
		// Up until the relay has settled at shutdown, below.
		r.mintRun.start(r.mint)
		defer r.mintRun.stop()
	}
	if len(r.cfg.Bootstrap) == 0 {
		log.Info("no bootstrap peers; waiting for relays to join through this one")
	} else if err := r.join(ctx); err != nil {
		wg.Wait()
		return nil // ctx ended
	}
	log.Info("publisher started", "roles", r.cfg.Roles.String(), "lifetime", r.cfg.Lifetime, "republish", r.cfg.Republish)
	wg.Add(4)
	go func() {
		defer wg.Done()
		if err := r.gossip.Run(ctx); err != nil {
			log.Error("descriptor gossip did not start; the view comes from other relays' views only", "err", err)
		}
	}()
	go func() { defer wg.Done(); r.confirmPublished(ctx) }()
	wg.Go(func() { r.republishEarly(ctx) })
	go func() { defer wg.Done(); r.router.Run(ctx) }()
	go func() { defer wg.Done(); r.rotateOnionKeys(ctx) }()
	wg.Go(func() { r.saveViewWhenChanged(ctx) })
	if r.pay != nil {
		wg.Add(1)
		go func() { defer wg.Done(); r.pay.Run(ctx) }()
	}
	err := r.pub.Run(ctx)
	wg.Wait()
	r.saveView()
	if r.pay != nil {
		r.settleAll()
	}
	return err
}

// A relay saves its view to its data directory when it has changed,
// often while the view fills after its start and then at most every
// viewSaveEvery: it checks after viewSaveFirst, and doubles the pause
// after each save, up to viewSaveEvery. It saves once more when it stops.
// A relay that crashes soon after its start thus still comes back with
// the view it had.
const (
	viewSaveFirst = time.Second
	viewSaveEvery = 5 * time.Minute
)

func (r *Relay) saveViewWhenChanged(ctx context.Context) {
	var saved uint64
	pause := viewSaveFirst
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		if v := r.gossip.Set().Version(); v != saved && r.saveView() {
			saved, pause = v, min(2*pause, viewSaveEvery)
		}
	}
}

// saveView writes the view to the data directory, and reports whether it
// did.
func (r *Relay) saveView() bool {
	if err := saveView(r.gossip.Set(), filepath.Join(r.cfg.DataDir, ViewFile)); err != nil {
		r.cfg.Logger.Warn("view not saved", "err", err)
		return false
	}
	return true
}

// earlyRepublish are the delays after start at which a relay signs and
// publishes its descriptor again. Peers on the view's gossip topic drop
// what a relay sends before they have taken it in, and relays pull views
// only from relays they already know: a descriptor gossiped once, at
// start, can reach nobody and stay unknown until the next republish.
var earlyRepublish = []time.Duration{5 * time.Second, 20 * time.Second, time.Minute}

// republishEarly publishes the descriptor again at earlyRepublish.
func (r *Relay) republishEarly(ctx context.Context) {
	for _, d := range earlyRepublish {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		r.pub.Changed()
	}
}

// settleAll closes, at shutdown, the channels the relay was paid on.
func (r *Relay) settleAll() {
	ctx, cancel := context.WithTimeout(context.Background(), mintTimeout)
	defer cancel()
	if err := r.pay.Flush(ctx); err != nil {
		r.cfg.Logger.Warn("channels left to settle at the next start: the mint could not be reached")
		r.cfg.Logger.Debug("settlement at shutdown failed", "err", err)
		return
	}
	r.cfg.Logger.Info("payment channels settled", "balance", r.pay.Balance(), "unit", r.pay.Unit())
}

// Router is the relay's circuit machinery.
func (r *Relay) Router() *router.Router { return r.router }

// rotateOnionKeys makes the keys of the coming intervals, hands the
// router the keys it answers at each moment (a key only from shortly
// before its interval) and republishes the descriptor when the published
// keys change. It looks every minute at most, so a key is answered well
// within onionOverlap of the time its interval begins.
func (r *Relay) rotateOnionKeys(ctx context.Context) {
	t := time.NewTicker(max(min(r.cfg.OnionRotation/8, time.Minute), time.Second))
	defer t.Stop()
	answered := r.keys.CircuitKeys(r.cfg.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := r.cfg.Now()
		changed, err := r.keys.Rotate(now)
		if err != nil {
			r.cfg.Logger.Error("onion key rotation failed", "err", err)
			continue
		}
		if keys := r.keys.CircuitKeys(now); !sameCircuitKeys(keys, answered) {
			if err := r.router.SetOnionKeys(keys); err != nil {
				r.cfg.Logger.Error("onion key rotation failed", "err", err)
				continue
			}
			answered = keys
			r.cfg.Logger.Info("onion key rotated")
		}
		if changed {
			r.pub.Changed()
		}
	}
}

func sameCircuitKeys(a, b []circuit.OnionKey) bool {
	return slices.EqualFunc(a, b, func(x, y circuit.OnionKey) bool { return x.Public == y.Public })
}

// confirmPublished logs once when the relay's own descriptor can be looked
// up in the DHT, so an operator sees that publishing works.
func (r *Relay) confirmPublished(ctx context.Context) {
	if r.node.WaitReady(ctx) != nil {
		return
	}
	wait := 100 * time.Millisecond
	for {
		lctx, cancel := context.WithTimeout(ctx, joinTimeout)
		d, _, err := r.node.LookupRelay(lctx, r.ID())
		cancel()
		if err == nil {
			r.cfg.Logger.Info("descriptor published", "seq", d.Seq, "expires", d.ExpiresAt().UTC().Format(time.RFC3339))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, joinRetryMax)
	}
}

// Joining backs off from joinRetryMin to joinRetryMax between attempts.
const (
	joinTimeout  = 30 * time.Second
	joinRetryMin = time.Second
	joinRetryMax = time.Minute
)

// join bootstraps until it succeeds or ctx ends.
func (r *Relay) join(ctx context.Context) error {
	wait := joinRetryMin
	for {
		err := bootstrapOnce(ctx, r.node)
		if err == nil {
			r.cfg.Logger.Info("joined the DHT", "peers", r.node.RoutingTableSize())
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.cfg.Logger.Warn("no bootstrap peer answered; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, joinRetryMax)
	}
}

func bootstrapOnce(ctx context.Context, n *dht.Node) error {
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	return n.Bootstrap(ctx)
}

// reachChanged follows a new reachability verdict or NAT class: the
// descriptor is signed again and the NAT's role is brought up to date.
func (r *Relay) reachChanged() {
	r.nat.changed()
	r.pub.Changed()
}

// Close leaves the DHT and closes the host. It is idempotent.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		var payErr error
		if r.pay != nil {
			payErr = r.pay.Close()
		}
		var reachErr, mintErr error
		if r.reach != nil {
			reachErr = r.reach.Close()
		}
		if r.mint != nil {
			mintErr = r.mint.close()
		}
		r.closeErr = errors.Join(reachErr, r.node.Close(), r.host.Close(), payErr, mintErr)
	})
	return r.closeErr
}

// Logger is the relay's logger.
func (r *Relay) Logger() *slog.Logger { return r.cfg.Logger }

var _ router.RelayChecker = (*view.Set)(nil)
