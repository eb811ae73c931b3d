package sim

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/router"
)

// relay is one simulated relay running obol's own code: a DHT server
// that publishes its signed descriptor, the view it gossips and serves
// (Config.Discovery view), and a router that carries circuits and, at an
// exit, opens streams to the simulated web.
type relay struct {
	idx    int
	ep     *endpoint
	key    crypto.PrivKey
	host   host.Host
	node   *dht.Node
	gossip *view.Gossip // nil with DiscoverySample
	router *router.Router
	onion  circuit.OnionKey
	// onionUntil is the not-after time published for onion: after the
	// simulated run, so it is the key clients choose.
	onionUntil int64
	roles      descriptor.Role
	bw         uint64 // advertised bytes per second
	sybil      bool

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (r *relay) ID() peer.ID { return r.host.ID() }

// relaySpec is what a new relay is.
type relaySpec struct {
	idx   int
	ep    *endpoint
	roles descriptor.Role
	bw    uint64 // advertised, bytes per second
	link  uint64 // the real link rate, bytes per second
	sybil bool
	boot  []peer.AddrInfo
}

// startRelay builds the relay and starts it: it joins the DHT through
// boot, starts its router and publishes its descriptor every interval.
func (n *Network) startRelay(s relaySpec) (*relay, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	low, high := relayConns(n.cfg)
	h, err := newHost(n.simnet, s.ep, key, n.link(s.link), low, high)
	if err != nil {
		return nil, err
	}
	node, err := dht.Open(h, dht.Config{Mode: dht.ModeServer, Bootstrap: s.boot})
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("sim: relay %d: %w", s.idx, err)
	}
	onion, err := circuit.GenerateOnionKey(rand.Reader)
	if err != nil {
		node.Close()
		h.Close()
		return nil, err
	}
	var exit *router.ExitPolicy
	if s.roles.Has(descriptor.RoleExit) {
		// Public addresses, every port; the reserved ranges stay refused.
		if exit, err = router.ParseExitPolicy([]string{"accept *:*"}); err != nil {
			node.Close()
			h.Close()
			return nil, err
		}
	}
	// A relay extends only to relays in its view, as `obol relay`
	// does; under the earlier design it looked next hops up.
	var dir router.Directory = &nextHops{node: node, cache: dht.NewCache("", nil)}
	var gossip *view.Gossip
	if n.cfg.Discovery == DiscoveryView {
		gossip = view.NewGossip(h, view.NewSet(nil), view.GossipConfig{Bootstrap: s.boot})
		dir = gossip.Set()
	}
	rt, err := router.New(h, router.Config{
		OnionKeys: []circuit.OnionKey{onion},
		Directory: dir,
		Exit:      exit,
		Dial:      n.web.dial,
		// A simulated relay carries the circuits of many simulated
		// clients that all come from few machines' worth of CPU.
		CreateRate: -1,
	})
	if err != nil {
		node.Close()
		h.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &relay{idx: s.idx, ep: s.ep, key: key, host: h, node: node, gossip: gossip, router: rt, onion: onion, onionUntil: time.Now().Add(7 * 24 * time.Hour).Unix(),
		roles: s.roles, bw: s.bw, sybil: s.sybil, cancel: cancel, done: make(chan struct{})}
	go r.run(ctx, s.boot, n.cfg)
	return r, nil
}

// run joins, serves and publishes until ctx ends.
func (r *relay) run(ctx context.Context, boot []peer.AddrInfo, cfg Config) {
	defer close(r.done)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.router.Run(ctx) }()
	if len(boot) > 0 {
		for ctx.Err() == nil {
			bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := r.node.Bootstrap(bctx)
			cancel()
			if err == nil {
				break
			}
			sleep(ctx, 5*time.Second)
		}
	}
	pub := dht.NewPublisher(r.node, r.sign(cfg.Lifetime), cfg.Republish)
	if r.gossip != nil {
		wg.Go(func() { r.gossip.Run(ctx) })
		pub.AlsoPublish(r.gossip.Publish)
		// As `obol relay`: publish again soon after start, since a
		// descriptor gossiped before peers took the relay in reaches
		// nobody.
		wg.Go(func() {
			for _, d := range []time.Duration{5 * time.Second, 20 * time.Second, time.Minute} {
				if sleep(ctx, d); ctx.Err() != nil {
					return
				}
				pub.Changed()
			}
		})
	}
	pub.Run(ctx)
	wg.Wait()
}

// sign is the relay's dht.SignFunc: the descriptor a relay of its kind
// publishes, with the advertised bandwidth it claims.
func (r *relay) sign(lifetime time.Duration) dht.SignFunc {
	return func(seq uint64, now time.Time) ([]byte, error) {
		d := &descriptor.Relay{
			Version: descriptor.Version, PeerID: r.ID(), Seq: seq,
			Published: now.Unix(), Expires: now.Add(lifetime).Unix(),
			Roles: r.roles, Bandwidth: r.bw, Protocols: []uint16{circuit.ProtocolVersion}, Software: "obol-sim",
			OnionKeys: []descriptor.OnionKey{{Key: r.onion.Public, NotAfter: r.onionUntil}},
		}
		// An obol relay names the keys of the coming day's intervals
		// too (7 at its defaults). The simulated relay answers one key
		// for its whole run; the others give its records their real
		// size, and expire after it, so no client picks them.
		for i := range 6 {
			var k [32]byte
			rand.Read(k[:])
			d.OnionKeys = append(d.OnionKeys, descriptor.OnionKey{Key: k, NotAfter: r.onionUntil + int64(i) + 1})
		}
		for _, a := range r.host.Addrs() {
			d.Addrs = append(d.Addrs, a.Bytes())
		}
		if r.roles.Has(descriptor.RoleExit) {
			d.ExitPorts = []descriptor.PortRange{{Lo: 1, Hi: 65535}}
		}
		return descriptor.Sign(r.key, d)
	}
}

// stop ends the relay as a crash does: nothing is withdrawn.
func (r *relay) stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
		r.node.Close()
		r.host.Close()
	})
}

// nextHops is the router's Directory, as a real relay's: its own cache,
// else a DHT lookup of the next hop.
type nextHops struct {
	node  *dht.Node
	cache *dht.Cache
}

// IsRelay implements router.RelayChecker from the cache.
func (d *nextHops) IsRelay(id peer.ID) bool {
	_, ok := d.cache.Get(id)
	return ok
}

func (d *nextHops) AddrInfo(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	r, ok := d.cache.Get(id)
	if !ok {
		var rec []byte
		var err error
		if r, rec, err = d.node.LookupRelay(ctx, id); err != nil {
			return peer.AddrInfo{}, fmt.Errorf("next hop: %w", err)
		}
		d.cache.Put(rec)
	}
	ai := peer.AddrInfo{ID: id}
	for _, b := range r.Addrs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
