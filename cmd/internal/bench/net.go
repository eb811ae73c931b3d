package bench

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
	"github.com/obolnet/obol/circuit/circuittest"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/router"
)

// directory is a static router.Directory: where each relay's next hop is.
type directory struct {
	mu sync.Mutex
	m  map[peer.ID]peer.AddrInfo
}

func newDirectory() *directory { return &directory{m: map[peer.ID]peer.AddrInfo{}} }

func (d *directory) AddrInfo(_ context.Context, id peer.ID) (peer.AddrInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ai, ok := d.m[id]
	if !ok {
		return ai, fmt.Errorf("bench: unknown relay %s", id)
	}
	return ai, nil
}

func (d *directory) set(id peer.ID, addrs []ma.Multiaddr) {
	d.mu.Lock()
	d.m[id] = peer.AddrInfo{ID: id, Addrs: addrs}
	d.mu.Unlock()
}

// relay is one in-process relay: a libp2p host and its router.
type relay struct {
	host   host.Host
	router *router.Router
	onion  circuit.OnionKey
	addrs  []ma.Multiaddr // what others dial: the host's or its forwarder's
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *relay) hop() client.Hop {
	return client.Hop{Peer: peer.AddrInfo{ID: r.host.ID(), Addrs: r.addrs}, OnionKey: r.onion.Public}
}

// testnet is a set of relays (every one an exit allowed to reach
// loopback) and a client's link manager, each relay optionally behind a
// delaying forwarder. Close releases everything.
type testnet struct {
	dir     *directory
	relays  []*relay
	client  *link.Manager
	chost   host.Host
	closers []func()
}

// newHost starts a libp2p host on loopback with a fresh identity.
func newHost() (host.Host, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	return dht.NewHost(dht.HostConfig{Identity: k})
}

// startNetwork starts n relays; meter, if not nil, gives relay i its meter.
func startNetwork(n int, l Link, meter func(i int) router.Meter) (*testnet, error) {
	nw := &testnet{dir: newDirectory()}
	for i := range n {
		var m router.Meter
		if meter != nil {
			m = meter(i)
		}
		r, err := nw.startRelay(m)
		if err != nil {
			nw.Close()
			return nil, err
		}
		if err := nw.delay(r, l); err != nil {
			nw.Close()
			return nil, err
		}
	}
	ch, err := newHost()
	if err != nil {
		nw.Close()
		return nil, err
	}
	nw.chost = ch
	nw.client = link.NewManager(ch, link.Config{})
	nw.client.Start()
	return nw, nil
}

func (nw *testnet) startRelay(m router.Meter) (*relay, error) {
	h, err := newHost()
	if err != nil {
		return nil, err
	}
	nw.closers = append(nw.closers, func() { h.Close() })
	onion, err := circuit.GenerateOnionKey(rand.Reader, 1)
	if err != nil {
		return nil, err
	}
	pol, err := router.ParseExitPolicy([]string{"accept *:*"}, router.AllowLoopback())
	if err != nil {
		return nil, err
	}
	// No per-peer limit on new circuits: every scenario's circuits come
	// from one client.
	rt, err := router.New(h, router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: nw.dir, Exit: pol, Meter: m,
		CreateRate: -1})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &relay{host: h, router: rt, onion: onion, addrs: h.Addrs(), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); rt.Run(ctx) }()
	nw.closers = append(nw.closers, func() { cancel(); <-r.done })
	nw.dir.set(h.ID(), r.addrs)
	nw.relays = append(nw.relays, r)
	return r, nil
}

// delay puts the relay behind a forwarder that emulates the link, if the
// link is not plain loopback.
func (nw *testnet) delay(r *relay, l Link) error {
	addr, closer, err := l.front(r.host)
	if err != nil || closer == nil {
		return err
	}
	nw.closers = append(nw.closers, closer)
	r.addrs = []ma.Multiaddr{addr}
	nw.dir.set(r.host.ID(), r.addrs)
	return nil
}

func (nw *testnet) path(idx ...int) []client.Hop {
	p := make([]client.Hop, len(idx))
	for k, i := range idx {
		p[k] = nw.relays[i].hop()
	}
	return p
}

// firstN is the path through relays 0..n-1.
func (nw *testnet) firstN(n int) []client.Hop {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return nw.path(idx...)
}

// warm builds and closes a circuit along path so the links are open.
func (nw *testnet) warm(ctx context.Context, path []client.Hop) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Build(ctx, nw.client, path)
	if err != nil {
		return fmt.Errorf("bench: warm-up build: %w", err)
	}
	return c.Close()
}

// Close stops the relays and the client; idempotent.
func (nw *testnet) Close() {
	if nw.client != nil {
		nw.client.Close()
		nw.chost.Close()
		nw.client = nil
	}
	for i := len(nw.closers) - 1; i >= 0; i-- {
		nw.closers[i]()
	}
	nw.closers = nil
}

// Link is the emulated link in front of every node: one-way delay, loss
// and a bandwidth limit per direction. The zero Link is plain loopback.
type Link struct {
	Delay     time.Duration `json:"delay_ns"`
	Loss      float64       `json:"loss"`
	Bandwidth int64         `json:"bandwidth_Bps"` // bytes per second; 0 unlimited
}

func (l Link) emulated() bool { return l.Delay > 0 || l.Loss > 0 || l.Bandwidth > 0 }

// front starts a delaying forwarder in front of h's QUIC address and
// returns the forwarder's address; nothing (nil closer) for plain loopback.
func (l Link) front(h host.Host) (ma.Multiaddr, func(), error) {
	if !l.emulated() {
		return nil, nil, nil
	}
	var port string
	for _, a := range h.Addrs() {
		if p, err := a.ValueForProtocol(ma.P_UDP); err == nil {
			if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
				port = p
			}
		}
	}
	if port == "" {
		return nil, nil, fmt.Errorf("bench: host %s has no QUIC address", h.ID())
	}
	var opts []circuittest.DelayOption
	if l.Loss > 0 {
		opts = append(opts, circuittest.WithLoss(l.Loss))
	}
	if l.Bandwidth > 0 {
		opts = append(opts, circuittest.WithBandwidth(l.Bandwidth))
	}
	d, err := circuittest.NewDelayUDP("127.0.0.1:"+port, l.Delay, opts...)
	if err != nil {
		return nil, nil, err
	}
	a := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", d.AddrPort().Port()))
	return a, func() { d.Close() }, nil
}
