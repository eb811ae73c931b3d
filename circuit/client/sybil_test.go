package client

import (
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
)

// seededRelay is a guard and exit in 10.i.0.0/16 claiming bw, with an
// identity drawn from rnd so that a measurement is the same every run.
func seededRelay(t testing.TB, rnd *mrand.ChaCha8, i int, bw uint64) *descriptor.Relay {
	k, _, err := crypto.GenerateEd25519Key(rnd)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.AddrFrom4([4]byte{10 + byte(i/256), byte(i), 0, 1})
	r := &descriptor.Relay{PeerID: id, Roles: descriptor.RoleRelay | descriptor.RoleGuard | descriptor.RoleExit,
		Bandwidth: bw, ExitPorts: []descriptor.PortRange{{Lo: 1, Hi: 65535}},
		OnionKeys: []descriptor.OnionKey{{NotAfter: testNow.Add(365 * 24 * time.Hour).Unix()}},
		Addrs:     [][]byte{ma.StringCast(fmt.Sprintf("/ip4/%s/udp/4001/quic-v1", ip)).Bytes()},
		Protocols: []uint16{circuit.ProtocolVersion}}
	rnd.Read(r.OnionKeys[0].Key[:])
	return r
}

// sybilNet is n relays in distinct /16s claiming honest bytes per second,
// the last adversary of them run by one adversary claiming sybil.
func sybilNet(t testing.TB, n, adversary int, honest, sybil uint64) ([]*descriptor.Relay, map[peer.ID]bool) {
	rnd := mrand.NewChaCha8([32]byte{'s', 'y', 'b', 'i', 'l'})
	var relays []*descriptor.Relay
	bad := map[peer.ID]bool{}
	for i := range n {
		bw := honest
		if i >= n-adversary {
			bw = sybil
		}
		r := seededRelay(t, rnd, i, bw)
		if i >= n-adversary {
			bad[r.PeerID] = true
		}
		relays = append(relays, r)
	}
	return relays, bad
}

// shares measures, over trials clients each with a fresh guard set and
// one circuit, how often the adversary is the guard, the exit, and both.
func shares(t testing.TB, rules pathRules, relays []*descriptor.Relay, bad map[peer.ID]bool, trials int) (guard, exit, both float64) {
	rnd := mrand.New(mrand.NewPCG(15, 15))
	cands := rules.candidates(relays, testNow)
	var g, e, ge int
	gs := newGuardSet("", DefaultGuards, DefaultGuardLifetime, DefaultGuardReplaceAfter, DefaultMinGuardAge)
	for range trials {
		gs.mu.Lock()
		gs.guards = nil // a new client, with the view's history
		gs.mu.Unlock()
		if _, err := gs.refresh(cands, rules, rnd, testNow); err != nil {
			t.Fatal(err)
		}
		path, err := rules.choose(cands, &pathRequest{port: 443, guards: gs.usable(cands, testNow), rnd: rnd})
		if err != nil {
			t.Fatal(err)
		}
		bg, be := bad[path[0].id()], bad[path[len(path)-1].id()]
		if bg {
			g++
		}
		if be {
			e++
		}
		if bg && be {
			ge++
		}
	}
	f := float64(trials)
	return float64(g) / f, float64(e) / f, float64(ge) / f
}

// One adversary runs 10 of 100 relays, in distinct /16s, and claims any
// bandwidth it likes: its share stays at most twice fair, ≤ 20 % of
// guards, ≤ 20 % of exits and ≤ 4 % of (guard, exit) pairs.
func TestSybilCapacityShare(t *testing.T) {
	const trials = 4000
	rules := testRules(3)
	claims := map[uint64][]uint64{
		1 << 20:  {1 << 20, 10 << 20, 100 << 20, 1 << 40, 1<<64 - 1},
		10 << 20: {1 << 20, 100 << 20, 1<<64 - 1},
	}
	for _, honest := range []uint64{1 << 20, 10 << 20} {
		for _, sybil := range claims[honest] {
			relays, bad := sybilNet(t, 100, 10, honest, sybil)
			checkShares(t, fmt.Sprintf("honest %d B/s", honest), sybil, rules, relays, bad, trials)
		}
	}
	// Honest claims spread: in two groups, 1 and 10 MiB/s (the adversary
	// moves the median into the upper one), and from 256 KiB/s to 64 MiB/s.
	for _, sybil := range []uint64{10 << 20, 1<<64 - 1} {
		relays, bad := sybilNet(t, 100, 10, 1<<20, sybil)
		for i := 45; i < 90; i++ {
			relays[i].Bandwidth = 10 << 20
		}
		checkShares(t, "honest 1 or 10 MiB/s", sybil, rules, relays, bad, trials)
		for i := range 90 {
			relays[i].Bandwidth = uint64(256<<10) << (i % 9)
		}
		checkShares(t, "honest 256 KiB/s to 64 MiB/s", sybil, rules, relays, bad, trials)
	}
}

func checkShares(t *testing.T, honest string, sybil uint64, rules pathRules, relays []*descriptor.Relay, bad map[peer.ID]bool, trials int) {
	t.Helper()
	g, e, ge := shares(t, rules, relays, bad, trials)
	t.Logf("%s, adversary %d B/s: guard %.1f %%, exit %.1f %%, both %.1f %%", honest, sybil, 100*g, 100*e, 100*ge)
	if g > 0.20 || e > 0.20 || ge > 0.04 {
		t.Errorf("%s, adversary claims %d B/s: guard %.1f %% (≤ 20), exit %.1f %% (≤ 20), both %.1f %% (≤ 4)",
			honest, sybil, 100*g, 100*e, 100*ge)
	}
}

// The weight limit is shareCap times the mean capped weight: no set of
// relays holds more than shareCap times its share of the relays.
func TestWeightLimit(t *testing.T) {
	tests := []struct {
		claims []uint64
		want   uint64
	}{
		{[]uint64{5}, 9},            // nobody capped: L = 1.8 × the mean
		{[]uint64{1, 1, 1, 1}, 2},   // all alike: nobody is capped
		{[]uint64{1, 1, 1, 100}, 3}, // L = 1.8·(3 + L)/4 → L = 2.45
		{[]uint64{1, 1, 1, 1 << 63}, 3},
		{[]uint64{10, 10, 10, 10, 10, 10, 10, 10, 10, 1000}, 20}, // L = 1.8·(90+L)/10 → L = 19.76
	}
	for _, tt := range tests {
		if got := weightLimit(tt.claims, shareCap); got != tt.want {
			t.Errorf("weightLimit(%v) = %d, want %d", tt.claims, got, tt.want)
		}
	}
	rnd := mrand.New(mrand.NewPCG(7, 7))
	for range 200 {
		claims := make([]uint64, 1+rnd.IntN(300))
		for i := range claims {
			claims[i] = 1 + rnd.Uint64N(1<<uint(1+rnd.IntN(40)))
		}
		slices.Sort(claims)
		l := weightLimit(claims, shareCap)
		var total float64
		for _, c := range claims {
			total += float64(min(c, l))
		}
		// L is shareCap times the mean capped weight, rounded up.
		if mean := total / float64(len(claims)); math.Abs(float64(l)-shareCap*mean) > 1 {
			t.Fatalf("%d claims: limit %d, not %.1f × the mean capped weight %.1f", len(claims), l, shareCap, mean)
		}
	}
}

// guardShare is how often, over trials guard sets filled anew at now,
// the relays of bad are chosen as a guard.
func guardShare(t testing.TB, g *guardSet, rules pathRules, cands []*candidate, bad map[peer.ID]bool, now time.Time, trials int) float64 {
	rnd := mrand.New(mrand.NewPCG(16, 16))
	hits, total := 0, 0
	for range trials {
		g.mu.Lock()
		g.guards = nil
		g.mu.Unlock()
		if _, err := g.refresh(cands, rules, rnd, now); err != nil {
			t.Fatal(err)
		}
		for _, id := range g.IDs() {
			total++
			if bad[id] {
				hits++
			}
		}
	}
	return float64(hits) / float64(total)
}

// A burst of new relays claiming huge bandwidths gets no guard share until
// the client has seen them for MinGuardAge; then it gets its capped share.
func TestGuardBurstGetsNoShare(t *testing.T) {
	const trials = 500
	rules := testRules(3)
	relays, _ := sybilNet(t, 100, 0, 1<<20, 0)
	burst, _ := sybilNet(t, 120, 0, 1<<40, 0)
	burst = burst[100:] // 20 relays in /16s of their own
	bad := map[peer.ID]bool{}
	for _, r := range burst {
		bad[r.PeerID] = true
	}
	g := newGuardSet(filepath.Join(t.TempDir(), "guards.json"), DefaultGuards, DefaultGuardLifetime, DefaultGuardReplaceAfter, DefaultMinGuardAge)
	start := testNow
	if _, err := g.refresh(rules.candidates(relays, start), rules, mrand.New(mrand.NewPCG(1, 1)), start); err != nil {
		t.Fatal(err)
	}
	arrive := start.Add(10 * 24 * time.Hour)
	all := rules.candidates(append(slices.Clone(relays), burst...), arrive)
	for _, at := range []time.Duration{0, time.Hour, DefaultMinGuardAge - time.Minute} {
		// The history survives a restart.
		reloaded := newGuardSet(g.path, DefaultGuards, DefaultGuardLifetime, DefaultGuardReplaceAfter, DefaultMinGuardAge)
		if err := reloaded.load(); err != nil {
			t.Fatal(err)
		}
		reloaded.path = "" // the trials need not be saved
		if share := guardShare(t, reloaded, rules, all, bad, arrive.Add(at), trials); share != 0 {
			t.Errorf("%v after the burst: its guard share is %.1f %%, want 0", at, 100*share)
		}
		g = reloaded
		g.path = filepath.Join(t.TempDir(), "guards.json")
		g.mu.Lock()
		g.saveLocked()
		g.mu.Unlock()
	}
	// Once old enough, the burst is eligible (and capped like any relay):
	// the test above could fail.
	share := guardShare(t, g, rules, all, bad, arrive.Add(DefaultMinGuardAge), trials)
	t.Logf("burst guard share: %.1f %% once %v old", 100*share, DefaultMinGuardAge)
	if share == 0 || share > 0.35 {
		t.Errorf("burst guard share %.1f %% once old, want above 0 and capped", 100*share)
	}
}
