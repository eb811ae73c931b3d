package sim

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/marcopolo/simnet"

	"github.com/obolnet/obol/descriptor"
)

// Network is a simulated obol network: relays, clients and adversarial
// DHT nodes on simnet links, placed in regions.
type Network struct {
	cfg    Config
	simnet *simnet.Simnet
	geo    *geography
	web    *web
	rnd    *rand.Rand

	mu        sync.Mutex // guards the fields below
	relays    []*relay   // every relay ever started, in start order
	gone      map[*relay]bool
	clients   []*simClient
	withhold  []*withholder
	nextAddr  int
	bootstrap []peer.AddrInfo
}

// bootstrapRelays is how many of the first relays new nodes join through.
const bootstrapRelays = 3

// newNetwork starts the simulated links. It starts no node.
func newNetwork(cfg Config) *Network {
	geo := newGeography(cfg.Regions, cfg.RTT)
	nw := &simnet.Simnet{LatencyFunc: geo.latency, Logger: discardLogger()}
	nw.Start()
	return &Network{cfg: cfg, simnet: nw, geo: geo, web: &web{},
		rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6f626f6c)), gone: map[*relay]bool{}}
}

// link is a node's link settings for bw bytes per second each way.
func (n *Network) link(bw uint64) simnet.NodeBiDiLinkSettings {
	bps := int(min(bw*8, math.MaxInt32))
	return simnet.NodeBiDiLinkSettings{
		Uplink:   simnet.LinkSettings{BitsPerSecond: bps},
		Downlink: simnet.LinkSettings{BitsPerSecond: bps},
	}
}

// newEndpoint places a new node in a region.
func (n *Network) newEndpoint(client bool) *endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	ep := &endpoint{addr: addrFor(n.nextAddr), region: n.geo.pick(n.rnd, client)}
	n.nextAddr++
	n.geo.place(ep.addr.IP, ep.region)
	return ep
}

// bandwidth draws an honest relay's bandwidth.
func (n *Network) bandwidth() uint64 {
	lo, hi := math.Log(float64(n.cfg.RelayBandwidth[0])), math.Log(float64(n.cfg.RelayBandwidth[1]))
	n.mu.Lock()
	x := n.rnd.Float64()
	n.mu.Unlock()
	return uint64(math.Exp(lo + x*(hi-lo)))
}

// addRelay starts one relay; sybil relays are guards and exits that
// claim the configured huge bandwidth on an ordinary link.
func (n *Network) addRelay(sybil bool) (*relay, error) {
	n.mu.Lock()
	idx := len(n.relays)
	exit := n.rnd.Float64() < n.cfg.ExitFraction
	boot := n.bootstrap
	n.mu.Unlock()
	bw := n.bandwidth()
	s := relaySpec{idx: idx, ep: n.newEndpoint(false), roles: descriptor.RoleRelay | descriptor.RoleGuard,
		bw: bw, link: bw, sybil: sybil, boot: boot}
	if exit || sybil {
		s.roles |= descriptor.RoleExit
	}
	if sybil { // an ordinary link that claims far more
		s.bw = n.cfg.SybilBandwidth
	}
	r, err := n.startRelay(s)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.relays = append(n.relays, r)
	if len(n.bootstrap) < bootstrapRelays {
		n.bootstrap = append(n.bootstrap, addrInfo(r.host))
	}
	n.mu.Unlock()
	return r, nil
}

func addrInfo(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// addClient starts a client (not yet joined).
func (n *Network) addClient() (*simClient, error) {
	n.mu.Lock()
	idx, boot := len(n.clients), n.bootstrap
	n.mu.Unlock()
	c, err := n.startClient(idx, n.newEndpoint(true), boot)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.clients = append(n.clients, c)
	n.mu.Unlock()
	return c, nil
}

// live returns the relays running now.
func (n *Network) live() []*relay {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*relay
	for _, r := range n.relays {
		if !n.gone[r] {
			out = append(out, r)
		}
	}
	return out
}

// remove stops r: a leave closes its connections, a crash makes it fall
// silent first, so its peers find out only by timeouts.
func (n *Network) remove(r *relay, crash bool) {
	n.mu.Lock()
	if n.gone[r] {
		n.mu.Unlock()
		return
	}
	n.gone[r] = true
	n.mu.Unlock()
	if crash {
		if c := r.ep.conn.Load(); c != nil {
			c.Close()
		}
	}
	r.stop()
}

// Close stops every node and the links.
func (n *Network) Close() {
	n.mu.Lock()
	clients, relays, wh := n.clients, n.relays, n.withhold
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(c.stop)
	}
	for _, w := range wh {
		wg.Go(w.stop)
	}
	for _, r := range relays {
		wg.Go(r.stop)
	}
	wg.Wait()
	n.simnet.Close()
}

// bytes sums what the given endpoints sent and received.
func sumBytes(eps []*endpoint) (sent, rcvd int64) {
	for _, e := range eps {
		s, r := e.Bytes()
		sent += s
		rcvd += r
	}
	return sent, rcvd
}
