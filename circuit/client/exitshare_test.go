package client

import (
	"math"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// exitNet is the network the simulator runs (sim, docs/scale.md): n
// relays in distinct /16s, every one a guard. The honest ones claim
// between 1 and 50 MB/s, log-uniformly, and three in ten of them are
// exits; the last adversary relays are one adversary's, all exits,
// claiming sybil.
func exitNet(t testing.TB, n, adversary int, sybil uint64) ([]*descriptor.Relay, map[peer.ID]bool) {
	relays, bad := sybilNet(t, n, adversary, 1, sybil)
	rnd := mrand.New(mrand.NewPCG(30, 30))
	for i, r := range relays[:n-adversary] {
		r.Bandwidth = uint64(math.Exp(math.Log(1e6) + rnd.Float64()*(math.Log(50e6)-math.Log(1e6))))
		if i%10 >= 3 {
			r.Roles &^= descriptor.RoleExit
			r.ExitPorts = nil
		}
	}
	return relays, bad
}

// exitCountShare is the adversary's share of the relays with the exit
// role.
func exitCountShare(relays []*descriptor.Relay, bad map[peer.ID]bool) float64 {
	exits, adversary := 0, 0
	for _, r := range relays {
		if r.Roles.Has(descriptor.RoleExit) {
			exits++
			if bad[r.PeerID] {
				adversary++
			}
		}
	}
	return float64(adversary) / float64(exits)
}

// exitWeightShare is the adversary's share of the exit weight.
func exitWeightShare(cands []*candidate, bad map[peer.ID]bool) float64 {
	var all, adversary float64
	for _, c := range cands {
		w := float64(c.weight[posExit].Load())
		all += w
		if bad[c.id()] {
			adversary += w
		}
	}
	return adversary / all
}

// One adversary runs 10 of 100 relays, in distinct /16s; they are all
// exits, while only three in ten honest relays are, so that it holds 27 %
// of the exits by count, and it claims any bandwidth it likes. Its share
// of the exit weight stays within shareCap times its count share of the
// exits, however the honest claims are spread between exits and other
// relays, and its guard share within 20 %: a claim buys no more.
func TestSybilExitShare(t *testing.T) {
	const trials = 6000
	rules := testRules(3)
	layouts := []struct {
		name   string
		spread func(relays []*descriptor.Relay)
	}{
		{"honest exits claim as others do", func([]*descriptor.Relay) {}},
		{"honest exits claim the least", func(relays []*descriptor.Relay) { sortClaims(relays, true) }},
		{"honest exits claim the most", func(relays []*descriptor.Relay) { sortClaims(relays, false) }},
	}
	for _, l := range layouts {
		for _, sybil := range []uint64{50e6, 1e9, 1<<64 - 1} {
			relays, bad := exitNet(t, 100, 10, sybil)
			l.spread(relays[:90])
			count := exitCountShare(relays, bad)
			weight := exitWeightShare(rules.candidates(relays, testNow), bad)
			g, e, ge := shares(t, rules, relays, bad, trials)
			t.Logf("%s; adversary claims %d B/s, %.1f %% of exits by count: exit weight %.1f %%; drawn: guard %.1f %%, exit %.1f %%, guard and exit %.1f %%",
				l.name, sybil, 100*count, 100*weight, 100*g, 100*e, 100*ge)
			if g > 0.20 {
				t.Errorf("%s; adversary claims %d B/s: guard share %.1f %%, want ≤ 20 %%", l.name, sybil, 100*g)
			}
			if limit := shareCap * count; weight > limit*1.001 { // the limit is rounded up to a whole byte per second
				t.Errorf("%s; adversary claims %d B/s: exit weight %.1f %%, want ≤ %.1f × %.1f %% = %.1f %%",
					l.name, sybil, 100*weight, shareCap, 100*count, 100*limit)
			}
		}
	}
}

// sortClaims gives the honest exits of relays (every third of ten) the
// least claims if least, else the most, keeping the set of claims.
func sortClaims(relays []*descriptor.Relay, least bool) {
	claims := make([]uint64, len(relays))
	for i, r := range relays {
		claims[i] = r.Bandwidth
	}
	slices.Sort(claims)
	if !least {
		slices.Reverse(claims)
	}
	exits, others := claims[:0:0], claims[:0:0]
	for i, c := range claims {
		if i < len(relays)*3/10 {
			exits = append(exits, c)
		} else {
			others = append(others, c)
		}
	}
	for _, r := range relays {
		if r.Roles.Has(descriptor.RoleExit) {
			r.Bandwidth, exits = exits[0], exits[1:]
		} else {
			r.Bandwidth, others = others[0], others[1:]
		}
	}
}

// exitShare is how often, over trials paths drawn at now, the exit is
// one of bad.
func exitShare(t testing.TB, g *guardSet, rules pathRules, relays []*descriptor.Relay, bad map[peer.ID]bool, now time.Time, trials int) float64 {
	rnd := mrand.New(mrand.NewPCG(17, 17))
	cands := rules.candidates(relays, now)
	if _, err := g.refresh(cands, rules, rnd, now); err != nil {
		t.Fatal(err)
	}
	hits := 0
	for range trials {
		path, err := rules.choose(cands, &pathRequest{port: 443, guards: g.usable(cands, now), rnd: rnd})
		if err != nil {
			t.Fatal(err)
		}
		if bad[path[len(path)-1].id()] {
			hits++
		}
	}
	return float64(hits) / float64(trials)
}

// A burst of new exits claiming huge bandwidths is never an exit until
// the client has seen it for MinExitAge; then it gets its capped share.
// The age survives a restart, in the guard file.
func TestExitBurstGetsNoShare(t *testing.T) {
	const trials = 3000
	relays, _ := exitNet(t, 100, 0, 0)
	burst, _ := sybilNet(t, 120, 0, 1<<40, 0)
	burst = burst[100:] // 20 guards and exits in /16s of their own
	bad := map[peer.ID]bool{}
	for _, r := range burst {
		bad[r.PeerID] = true
	}
	file := filepath.Join(t.TempDir(), "guards.json")
	g := newGuardSet(file, DefaultGuards, DefaultGuardLifetime, DefaultGuardReplaceAfter, DefaultMinGuardAge)
	g.minExitAge = DefaultMinExitAge
	rules := testRules(3)
	rules.exitAge = g.oldExit
	start := testNow
	if _, err := g.refresh(rules.candidates(relays, start), rules, mrand.New(mrand.NewPCG(1, 1)), start); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(relays), burst...)
	arrive := start.Add(10 * 24 * time.Hour)
	for _, at := range []time.Duration{0, time.Hour, DefaultMinExitAge - time.Minute} {
		reloaded := newGuardSet(file, DefaultGuards, DefaultGuardLifetime, DefaultGuardReplaceAfter, DefaultMinGuardAge)
		if err := reloaded.load(); err != nil {
			t.Fatal(err)
		}
		reloaded.minExitAge = DefaultMinExitAge
		rules.exitAge = reloaded.oldExit
		if share := exitShare(t, reloaded, rules, all, bad, arrive.Add(at), trials); share != 0 {
			t.Errorf("%v after the burst: its exit share is %.1f %%, want 0", at, 100*share)
		}
		g = reloaded
	}
	// Once old enough, the burst is eligible, and capped like any exit:
	// the test above could fail.
	share := exitShare(t, g, rules, all, bad, arrive.Add(DefaultMinExitAge), trials)
	count := exitCountShare(all, bad)
	t.Logf("burst exit share: %.1f %% once %v old (%.1f %% of exits by count)", 100*share, DefaultMinExitAge, 100*count)
	if share == 0 || share > shareCap*count+0.03 {
		t.Errorf("burst exit share %.1f %% once old, want above 0 and within %.1f × %.1f %%", 100*share, shareCap, 100*count)
	}
	// With the rule waived, as on a local test network, the burst is an
	// exit at once.
	g.minExitAge = -1
	if share := exitShare(t, g, rules, all, bad, arrive, trials); share == 0 {
		t.Error("MinExitAge waived: the burst is still no exit")
	}
}

// Over random networks, any k of the n exit candidates hold at most
// shareCap·k/n of the exit weight, relays that are not exits, or not old
// enough, have none, and no exit weighs more than the view's limit.
func TestExitWeightsPerPosition(t *testing.T) {
	rnd := mrand.New(mrand.NewPCG(8, 8))
	for trial := range 200 {
		n := 10 + rnd.IntN(150)
		relays, _ := sybilNet(t, n, 0, 1, 0)
		exitFraction := 0.1 + 0.5*rnd.Float64()
		young := map[peer.ID]bool{}
		for _, r := range relays {
			r.Bandwidth = 1 + rnd.Uint64N(1<<uint(1+rnd.IntN(40)))
			if rnd.Float64() >= exitFraction {
				r.Roles &^= descriptor.RoleExit
			}
			young[r.PeerID] = rnd.IntN(10) == 0
		}
		rules := testRules(3)
		rules.exitAge = func(id peer.ID, _ time.Time) bool { return !young[id] }
		cands := rules.candidates(relays, testNow)
		view := claimLimit(cands)
		var exits []uint64
		var total float64
		for _, c := range cands {
			w := c.weight[posExit].Load()
			switch {
			case !c.r.Roles.Has(descriptor.RoleExit) || young[c.id()]:
				if w != 0 {
					t.Fatalf("trial %d: a relay that may not be an exit has exit weight %d", trial, w)
				}
				continue
			case w == 0 || w > view:
				t.Fatalf("trial %d: exit weight %d, want between 1 and the view's limit %d", trial, w, view)
			}
			exits = append(exits, w)
			total += float64(w)
		}
		slices.Sort(exits)
		slices.Reverse(exits)
		var top float64
		for k, w := range exits {
			top += float64(w)
			// The limit is rounded up: each of the k+1 may exceed it by
			// less than 1.
			if bound := shareCap * float64(k+1) / float64(len(exits)); top/total > bound+float64(k+1)/total {
				t.Fatalf("trial %d: the %d heaviest of %d exits hold %.4f of the exit weight, above %.4f", trial, k+1, len(exits), top/total, bound)
			}
		}
	}
}
