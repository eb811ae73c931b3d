package sim

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/marcopolo/simnet"
)

// Region is a part of the world that nodes are placed in.
type Region struct {
	Name string
	// RelayShare and ClientShare are the fractions of relays and of
	// clients placed here; they need not sum to one (they are weights).
	RelayShare, ClientShare float64
}

// The region model: seven regions, relays placed as Tor's are (most in
// Europe, then North America), clients spread more widely. RTTs are
// round-trip times in milliseconds between typical data centres of the
// regions, rounded from public ping tables (WonderNetwork, Cloudflare
// and AWS inter-region figures, 2024); a region to itself is a
// metropolitan-to-national path.
var (
	DefaultRegions = []Region{
		{"eu-central", 0.40, 0.15},
		{"eu-west", 0.22, 0.15},
		{"na-east", 0.15, 0.20},
		{"na-west", 0.08, 0.10},
		{"asia-east", 0.07, 0.25},
		{"south-america", 0.04, 0.10},
		{"oceania", 0.04, 0.05},
	}
	DefaultRTT = [][]int{
		//  euc  euw  nae  naw  asia  sa   oce
		{15, 20, 90, 150, 230, 200, 290},   // eu-central
		{20, 12, 75, 140, 220, 190, 280},   // eu-west
		{90, 75, 15, 65, 170, 120, 200},    // na-east
		{150, 140, 65, 15, 110, 180, 150},  // na-west
		{230, 220, 170, 110, 25, 260, 120}, // asia-east
		{200, 190, 120, 180, 260, 20, 300}, // south-america
		{290, 280, 200, 150, 120, 300, 15}, // oceania
	}
)

// geography places nodes in regions and gives every packet its one-way
// delay: half the RTT between the regions of its ends, with a little
// jitter-free per-pair spread so that not all pairs of two regions are
// equally far apart.
type geography struct {
	regions []Region
	rtt     [][]int

	mu     sync.Mutex // guards region
	region map[[4]byte]int
}

func newGeography(regions []Region, rtt [][]int) *geography {
	return &geography{regions: regions, rtt: rtt, region: map[[4]byte]int{}}
}

func ip4(ip net.IP) (k [4]byte) {
	copy(k[:], ip.To4())
	return k
}

// place records that ip is in region r.
func (g *geography) place(ip net.IP, r int) {
	g.mu.Lock()
	g.region[ip4(ip)] = r
	g.mu.Unlock()
}

// pick draws a region by relay or client share.
func (g *geography) pick(rnd *rand.Rand, client bool) int {
	total := 0.0
	for _, r := range g.regions {
		total += share(r, client)
	}
	x := rnd.Float64() * total
	for i, r := range g.regions {
		if x -= share(r, client); x < 0 {
			return i
		}
	}
	return len(g.regions) - 1
}

func share(r Region, client bool) float64 {
	if client {
		return r.ClientShare
	}
	return r.RelayShare
}

// RTT is the round-trip time between two regions.
func (g *geography) RTT(a, b int) time.Duration { return time.Duration(g.rtt[a][b]) * time.Millisecond }

// latency is simnet's LatencyFunc.
func (g *geography) latency(p *simnet.Packet) time.Duration {
	from, to := p.From.(*net.UDPAddr), p.To.(*net.UDPAddr)
	g.mu.Lock()
	a, b := g.region[ip4(from.IP)], g.region[ip4(to.IP)]
	g.mu.Unlock()
	// Spread pairs by up to ±10% of the RTT, fixed per pair, from the
	// last octets of the addresses.
	f, t := ip4(from.IP), ip4(to.IP)
	spread := int(f[1]^t[1]^f[0]^t[0])%21 - 10
	rtt := g.RTT(a, b)
	return (rtt + rtt*time.Duration(spread)/100) / 2
}

// addrFor gives node number n (relays and clients numbered apart) a
// public IPv4 address in a /16 of its own, so that the path rules and
// the DHT's diversity limits see every node as a different network.
func addrFor(n int) *net.UDPAddr {
	// 11.0.0.0 up to 99.255.0.0, skipping nothing private on the way
	// except what net.IP.IsPrivate names (none in that range).
	a := 11 + n/256
	b := n % 256
	return &net.UDPAddr{IP: net.IPv4(byte(a), byte(b), 0, 1), Port: 4001}
}
