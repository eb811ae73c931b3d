package client

import (
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
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
		gs := newGuardSet("", DefaultGuards, DefaultGuardLifetime, DefaultGuardReplaceAfter)
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
