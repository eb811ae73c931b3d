package client

import (
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
)

var testNow = time.Unix(1_800_000_000, 0)

func newID(t testing.TB) peer.ID {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fakeRelay is a descriptor for path tests: addrs are IP addresses.
func fakeRelay(t testing.TB, roles descriptor.Role, bw uint64, addrs ...string) *descriptor.Relay {
	r := &descriptor.Relay{PeerID: newID(t), Roles: roles | descriptor.RoleRelay, Bandwidth: bw,
		OnionKeys: []descriptor.OnionKey{{NotAfter: testNow.Add(365 * 24 * time.Hour).Unix()}},
		Protocols: []uint16{circuit.ProtocolVersion}}
	rand.Read(r.OnionKeys[0].Key[:])
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		proto := "ip4"
		if ip.Is6() {
			proto = "ip6"
		}
		r.Addrs = append(r.Addrs, ma.StringCast(fmt.Sprintf("/%s/%s/udp/4001/quic-v1", proto, ip)).Bytes())
	}
	if roles.Has(descriptor.RoleExit) {
		r.ExitPorts = []descriptor.PortRange{{Lo: 1, Hi: 65535}}
	}
	return r
}

// world is a varied directory: relays in shared and distinct /16s, IPv6
// relays sharing /32s, families declared one way, exits with narrow
// policies, one relay claiming an enormous bandwidth.
type world struct {
	relays []*descriptor.Relay
}

func newWorld(t testing.TB) *world {
	w := &world{}
	for i := range 30 {
		roles := descriptor.RoleRelay
		if i%2 == 0 {
			roles |= descriptor.RoleGuard
		}
		if i%3 == 0 {
			roles |= descriptor.RoleExit
		}
		// Relays i and i+10 share a /16; 20..29 are IPv6, pairs share a /32.
		addr := fmt.Sprintf("10.%d.%d.1", i%10, i)
		if i >= 20 {
			addr = fmt.Sprintf("2001:db8:%x::%x", i/2, i)
		}
		r := fakeRelay(t, roles, uint64(1+i)<<20, addr)
		if i%9 == 0 && i > 0 {
			r.ExitPorts = []descriptor.PortRange{{Lo: 443, Hi: 443}}
		}
		w.relays = append(w.relays, r)
	}
	// Families: 1 declares 2 and 4 declares 5 (one direction each).
	w.relays[1].Family = []peer.ID{w.relays[2].PeerID}
	w.relays[4].Family = []peer.ID{w.relays[5].PeerID}
	return w
}

func (w *world) byID() map[peer.ID]*descriptor.Relay {
	m := map[peer.ID]*descriptor.Relay{}
	for _, r := range w.relays {
		m[r.PeerID] = r
	}
	return m
}

func testRules(hops int) pathRules { return pathRules{hops: hops, maxWeight: DefaultMaxWeight} }

func sameNet(a, b *descriptor.Relay) bool {
	pa := (&candidate{}).withAddrs(a)
	pb := (&candidate{}).withAddrs(b)
	for _, p := range pa {
		if slices.Contains(pb, p) {
			return true
		}
	}
	return false
}

func (c *candidate) withAddrs(r *descriptor.Relay) []netip.Prefix {
	for _, b := range r.Addrs {
		c.addAddr(b)
	}
	return c.nets
}

// Over many paths of every length, with guards from a guard set: no relay
// twice, no two relays in one /16 or /32 or one family, the exit accepts
// the port, the first hop is a guard.
func TestPathConstraintsHold(t *testing.T) {
	w := newWorld(t)
	byID := w.byID()
	rnd := mrand.New(mrand.NewPCG(1, 2))
	for hops := 1; hops <= 8; hops++ {
		rules := testRules(hops)
		cands := rules.candidates(w.relays, testNow)
		gs := newGuardSet("", 3, DefaultGuardLifetime, DefaultGuardReplaceAfter, DefaultMinGuardAge)
		if _, err := gs.refresh(cands, rules, rnd, testNow); err != nil {
			t.Fatal(err)
		}
		guards := gs.IDs()
		built := 0
		for i := range 500 {
			port := []uint16{80, 443, 22}[i%3]
			req := &pathRequest{port: port, guards: gs.usable(cands, testNow), rnd: rnd}
			path, err := rules.choose(cands, req)
			if errors.Is(err, ErrNoPath) && hops >= 6 {
				continue // long paths may not fit the world's subnets and families
			}
			if errors.Is(err, ErrNoPath) && hops == 1 {
				continue // no guard may be an exit for the port
			}
			if err != nil {
				t.Fatalf("%d hops, port %d: %v", hops, port, err)
			}
			built++
			checkPath(t, path, port, guards, byID)
		}
		if built == 0 && hops >= 2 && hops <= 5 {
			t.Fatalf("%d hops: no path built", hops)
		}
	}
}

func checkPath(t *testing.T, path []*candidate, port uint16, guards []peer.ID, byID map[peer.ID]*descriptor.Relay) {
	t.Helper()
	if !slices.Contains(guards, path[0].id()) {
		t.Fatalf("first hop %s is not a guard", path[0].id())
	}
	if !path[len(path)-1].r.AcceptsPort(port) {
		t.Fatalf("exit does not accept port %d", port)
	}
	for i, a := range path {
		for _, b := range path[i+1:] {
			ra, rb := byID[a.id()], byID[b.id()]
			switch {
			case a.id() == b.id():
				t.Fatal("relay twice in a path")
			case slices.Contains(ra.Family, rb.PeerID) || slices.Contains(rb.Family, ra.PeerID):
				t.Fatal("two relays of one family in a path")
			case sameNet(ra, rb):
				t.Fatal("two relays of one /16 or /32 in a path")
			}
		}
	}
}

func TestPathHopMapping(t *testing.T) {
	r := fakeRelay(t, descriptor.RoleGuard|descriptor.RoleExit, 1<<20, "10.1.0.1", "10.2.0.1")
	r.Addrs = append([][]byte{{0xff}}, r.Addrs...) // an unparsable address first
	r.OnionKeys = append(r.OnionKeys, descriptor.OnionKey{Key: [32]byte{9}, NotAfter: testNow.Add(-time.Second).Unix()})
	c := testRules(1).candidates([]*descriptor.Relay{r}, testNow)
	if len(c) != 1 {
		t.Fatal("relay not a candidate")
	}
	h := c[0].hop()
	if h.Peer.ID != r.PeerID || h.OnionKey != r.OnionKeys[0].Key {
		t.Fatal("wrong peer or onion key")
	}
	if len(h.Peer.Addrs) != 1 || h.Peer.Addrs[0].String() != "/ip4/10.1.0.1/udp/4001/quic-v1" {
		t.Fatalf("addrs %v, want the first usable one", h.Peer.Addrs)
	}
}

func TestCandidatesFilter(t *testing.T) {
	cheap := fakeRelay(t, descriptor.RoleExit, 1, "10.1.0.1")
	dear := fakeRelay(t, descriptor.RoleExit, 1, "10.2.0.1")
	dear.Price.PerMiB = 1000
	expired := fakeRelay(t, descriptor.RoleExit, 1, "10.3.0.1")
	expired.OnionKeys[0].NotAfter = testNow.Unix()
	noAddr := fakeRelay(t, descriptor.RoleExit, 1)
	// A relay of the old relay layer (protocol 1) cannot open the
	// client's layer: a circuit through it would die at its hop.
	old := fakeRelay(t, descriptor.RoleExit, 1, "10.4.0.1")
	old.Protocols = []uint16{1}
	rules := testRules(3)
	rules.price = &PriceLimit{PerMiB: 100, PerCircuit: 100}
	got := rules.candidates([]*descriptor.Relay{cheap, dear, expired, noAddr, old}, testNow)
	if len(got) != 1 || got[0].r != cheap {
		t.Fatalf("kept %d candidates, want only the cheap one", len(got))
	}
}

// A relay claiming a huge bandwidth counts no more than MaxWeight.
func TestWeightCapped(t *testing.T) {
	var relays []*descriptor.Relay
	for i := range 10 {
		relays = append(relays, fakeRelay(t, descriptor.RoleExit, 1<<20, fmt.Sprintf("10.%d.0.1", i)))
	}
	relays[0].Bandwidth = 1 << 50
	rules := testRules(2)
	rules.maxWeight = 2 << 20
	cands := rules.candidates(relays, testNow)
	rnd := mrand.New(mrand.NewPCG(3, 4))
	hits := 0
	const n = 5000
	for range n {
		if rules.pick(cands, nil, &pathRequest{rnd: rnd}, posMiddle, func(*candidate) bool { return true }) == cands[0] {
			hits++
		}
	}
	// Capped weight 2 against 9×1: expected share 2/11 ≈ 18 %.
	if hits > n/4 {
		t.Fatalf("capped relay picked %d of %d times", hits, n)
	}
}

func TestNoExitForPort(t *testing.T) {
	g := fakeRelay(t, descriptor.RoleGuard, 1, "10.1.0.1")
	m := fakeRelay(t, 0, 1, "10.2.0.1")
	x := fakeRelay(t, descriptor.RoleExit, 1, "10.3.0.1")
	x.ExitPorts = []descriptor.PortRange{{Lo: 443, Hi: 443}}
	rules := testRules(3)
	cands := rules.candidates([]*descriptor.Relay{g, m, x}, testNow)
	rnd := mrand.New(mrand.NewPCG(5, 6))
	if _, err := rules.choose(cands, &pathRequest{port: 80, guards: cands[:1], rnd: rnd}); !errors.Is(err, ErrNoPath) {
		t.Fatalf("port 80: %v, want ErrNoPath", err)
	}
	p, err := rules.choose(cands, &pathRequest{port: 443, guards: cands[:1], rnd: rnd})
	if err != nil || p[0].r != g || p[1].r != m || p[2].r != x {
		t.Fatalf("port 443: %v", err)
	}
}

// Same-subnet relays make no path unless the rule is lifted (local
// networks, where every relay is on loopback).
func TestSameSubnetRule(t *testing.T) {
	var relays []*descriptor.Relay
	for range 3 {
		relays = append(relays, fakeRelay(t, descriptor.RoleGuard|descriptor.RoleExit, 1, "127.0.0.1"))
	}
	rnd := mrand.New(mrand.NewPCG(7, 8))
	rules := testRules(3)
	cands := rules.candidates(relays, testNow)
	if _, err := rules.choose(cands, &pathRequest{port: 80, guards: cands, rnd: rnd}); !errors.Is(err, ErrNoPath) {
		t.Fatalf("same /16: %v, want ErrNoPath", err)
	}
	rules.allowSameSubnet = true
	if _, err := rules.choose(cands, &pathRequest{port: 80, guards: cands, rnd: rnd}); err != nil {
		t.Fatal(err)
	}
}

// Choosing a 3-hop path among 2000 relays, with the candidates made once
// (as the manager keeps them) and made afresh.
func BenchmarkChoosePath(b *testing.B) {
	var relays []*descriptor.Relay
	for i := range 2000 {
		relays = append(relays, fakeRelay(b, descriptor.RoleGuard|descriptor.Role(i%2)*descriptor.RoleExit,
			uint64(i+1)<<16, fmt.Sprintf("10.%d.%d.1", i%250, i/250), fmt.Sprintf("2001:%x::1", 0x1000+i)))
	}
	rules := testRules(3)
	rnd := mrand.New(mrand.NewPCG(9, 10))
	for _, cached := range []bool{true, false} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			seen := map[*descriptor.Relay]*candidate{}
			for b.Loop() {
				var cands []*candidate
				if cached {
					cands = rules.candidatesFrom(relays, testNow, seen)
				} else {
					cands = rules.candidates(relays, testNow)
				}
				if _, err := rules.choose(cands, &pathRequest{port: 443, guards: cands[:3], rnd: rnd}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Relays behind NATs publish their rendezvous' addresses, so their own
// networks are unknown: one operator's relays behind one NAT, each
// reserving at a rendezvous in another /16, would pass the /16 rule. Two
// of them never share a path, while each is still drawn.
func TestRelaysBehindNATsNeverShareAPath(t *testing.T) {
	var relays []*descriptor.Relay
	for i := range 8 { // public guards and exits, each in its own /16
		relays = append(relays, fakeRelay(t, descriptor.RoleGuard|descriptor.RoleExit, 1<<20, fmt.Sprintf("10.%d.0.1", i)))
	}
	natted := map[peer.ID]bool{}
	for i := range 6 { // behind NATs: middle or exit, through rendezvous 0..5
		r := fakeRelay(t, descriptor.RoleExit, 1<<20)
		rendezvous := relays[i]
		r.Addrs = [][]byte{ma.StringCast(fmt.Sprintf("/ip4/10.%d.0.1/udp/4001/quic-v1/p2p/%s/p2p-circuit", i, rendezvous.PeerID)).Bytes()}
		natted[r.PeerID] = true
		relays = append(relays, r)
	}
	rnd := mrand.New(mrand.NewPCG(3, 4))
	for hops := 3; hops <= 5; hops++ {
		rules := testRules(hops)
		cands := rules.candidates(relays, testNow)
		gs := newGuardSet("", 3, DefaultGuardLifetime, DefaultGuardReplaceAfter, DefaultMinGuardAge)
		if _, err := gs.refresh(cands, rules, rnd, testNow); err != nil {
			t.Fatal(err)
		}
		drawn := 0
		for range 2000 {
			path, err := rules.choose(cands, &pathRequest{port: 443, guards: gs.usable(cands, testNow), rnd: rnd})
			if err != nil {
				t.Fatalf("%d hops: %v", hops, err)
			}
			n := 0
			for _, c := range path {
				if natted[c.id()] {
					n++
				}
			}
			if n > 1 {
				t.Fatalf("%d hops: %d relays behind NATs in one path", hops, n)
			}
			drawn += n
		}
		if drawn == 0 {
			t.Fatalf("%d hops: no relay behind a NAT was ever drawn: the test shows nothing", hops)
		}
	}
}
