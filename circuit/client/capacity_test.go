package client

import (
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// trainCapacity runs circuits chosen by the client's own path selection
// (new clients now and then), each delivering the rate of its slowest
// hop give or take half, and feeds what they carried to the tracker; the
// weights follow the tracker as they go.
func trainCapacity(t *testing.T, tracker *capacityTracker, relays []*descriptor.Relay, deliver map[peer.ID]float64, circuits int) {
	rules := testRules(3)
	rules.factor = tracker.factor
	cands := rules.candidates(relays, testNow)
	rnd := mrand.New(mrand.NewPCG(21, 21))
	gs := newGuardSet("", DefaultGuards, DefaultGuardLifetime, DefaultGuardReplaceAfter, -1)
	for i := range circuits {
		if i%30 == 0 {
			gs.mu.Lock()
			gs.guards = nil
			gs.mu.Unlock()
			rules.weigh(cands, testNow)
			if _, err := gs.refresh(cands, rules, rnd, testNow); err != nil {
				t.Fatal(err)
			}
		}
		path, err := rules.choose(cands, &pathRequest{port: 443, guards: gs.usable(cands, testNow), rnd: rnd})
		if err != nil {
			t.Fatal(err)
		}
		rate := deliver[path[0].id()]
		ids := make([]peer.ID, len(path))
		for j, c := range path {
			ids[j] = c.id()
			rate = min(rate, deliver[c.id()])
		}
		rate *= 0.5 + rnd.Float64()
		const bytes = 4 << 20
		tracker.observe(ids, bytes, time.Duration(float64(bytes)/rate*float64(time.Second)))
	}
	rules.weigh(cands, testNow)
}

// A Sybil that claims an enormous bandwidth but delivers a twentieth of
// what honest relays do loses most of the share its claims bought once
// the client has seen it on its circuits; on a fair network, where
// relays deliver unequally but none far below the rest, nobody's weight
// falls.
func TestObservedCapacityLowersWeights(t *testing.T) {
	relays, bad := sybilNet(t, 100, 10, 1<<20, 1<<64-1)
	deliver := map[peer.ID]float64{}
	rnd := mrand.New(mrand.NewPCG(22, 22))
	for _, r := range relays {
		deliver[r.PeerID] = 500e3 + 1.5e6*rnd.Float64() // honest: 0.5 to 2 MB/s per circuit
		if bad[r.PeerID] {
			deliver[r.PeerID] = 50e3
		}
	}
	tracker := newCapacityTracker()
	rules := testRules(3)
	rules.factor = tracker.factor
	g0, e0, ge0 := shares(t, rules, relays, bad, 2000)
	trainCapacity(t, tracker, relays, deliver, 3000)
	g, e, ge := shares(t, rules, relays, bad, 2000)
	t.Logf("adversary delivering 50 kB/s: guard %.1f → %.1f %%, exit %.1f → %.1f %%, both %.1f → %.1f %%",
		100*g0, 100*g, 100*e0, 100*e, 100*ge0, 100*ge)
	if g > 0.06 || e > 0.06 || ge > 0.01 {
		t.Errorf("after observation the slow Sybil still holds guard %.1f %%, exit %.1f %%, both %.1f %%", 100*g, 100*e, 100*ge)
	}
	fallen := 0
	for _, r := range relays {
		if !bad[r.PeerID] && tracker.factor(r.PeerID) < 1 {
			fallen++
		}
	}
	if fallen > 5 {
		t.Errorf("%d of 90 honest relays lost weight", fallen)
	}

	// A fair network: every relay delivers 0.5 to 2 MB/s.
	for _, r := range relays {
		deliver[r.PeerID] = 500e3 + 1.5e6*rnd.Float64()
	}
	fair := newCapacityTracker()
	trainCapacity(t, fair, relays, deliver, 3000)
	for _, r := range relays {
		if f := fair.factor(r.PeerID); f < 1 {
			t.Errorf("on a fair network relay %s delivering %.0f B/s per circuit has factor %.2f", r.PeerID, deliver[r.PeerID], f)
		}
	}
}
