package client

import (
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

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
		Addrs:     [][]byte{ma.StringCast(fmt.Sprintf("/ip4/%s/udp/4001/quic-v1", ip)).Bytes()}}
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
	for range trials {
		gs := newGuardSet("", DefaultGuards, DefaultGuardLifetime, DefaultGuardReplaceAfter, DefaultMinGuardAge)
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
	for _, honest := range []uint64{1 << 20, 10 << 20} {
		for _, sybil := range []uint64{1 << 20, 10 << 20, 100 << 20, 1 << 30, 1 << 40, 1<<64 - 1} {
			relays, bad := sybilNet(t, 100, 10, honest, sybil)
			g, e, ge := shares(t, rules, relays, bad, trials)
			t.Logf("honest %d B/s, adversary %d B/s: guard %.1f %%, exit %.1f %%, both %.1f %%", honest, sybil, 100*g, 100*e, 100*ge)
			if g > 0.20 || e > 0.20 || ge > 0.04 {
				t.Errorf("honest %d B/s, adversary claims %d B/s: guard %.1f %% (≤ 20), exit %.1f %% (≤ 20), both %.1f %% (≤ 4)",
					honest, sybil, 100*g, 100*e, 100*ge)
			}
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
