package client

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
)

// deadRelayTrial runs one client against relays of which those in dead
// never answer: each request tries up to attempts paths, a path fails if
// it holds a dead relay; the exits of
// earlier requests are avoided where others will do, as each request has
// an isolation key of its own (a dead guard is seen as unreachable, any other
// dead hop as a build failure of the whole path, as on the wire). It
// returns how many of the requests failed.
func deadRelayTrial(t *testing.T, relays []*descriptor.Relay, deadOf func(guards []peer.ID) map[peer.ID]bool, seed uint64, requests, attempts int) int {
	t.Helper()
	m, err := NewCircuitManager(Config{Links: new(link.Manager), Directory: DirectoryFunc(func() []*descriptor.Relay { return relays }),
		AllowSameSubnet: true, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	m.rnd = rand.New(rand.NewPCG(seed, seed))
	if _, err := m.choosePath(80, nil); err != nil { // picks the guards
		t.Fatal(err)
	}
	dead := deadOf(m.Guards())
	failed := 0
	used := map[peer.ID]bool{} // exits of other isolation keys' circuits
	for range requests {
		ok := false
		for range attempts {
			path, err := m.choosePath(80, used)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case dead[path[0].id()]:
				m.guards.failed(path[0].id(), testNow)
				m.suspect(path[:1])
			case dead[path[1].id()]: // the guard cannot reach it
				m.suspect(blamed(path, &circuit.DestroyedError{Reason: circuit.DestroyConnectFailed}))
			case slices.ContainsFunc(path[2:], func(c *candidate) bool { return dead[c.id()] }):
				m.suspect(blamed(path, &circuit.DestroyedError{Reason: circuit.DestroyDestroyed}))
			default:
				m.vouch(path)
				used[path[len(path)-1].id()] = true
				ok = true
			}
			if ok {
				break
			}
		}
		if !ok {
			failed++
		}
	}
	return failed
}

// With one guard and two other relays of seven dead (still in the
// directory), a client finds a live path within its attempts: a dead
// relay fails every path it is in, a live one only those it shares with
// a dead one.
func TestPathsAvoidDeadRelays(t *testing.T) {
	var relays []*descriptor.Relay
	for range 7 {
		relays = append(relays, fakeRelay(t, descriptor.RoleGuard|descriptor.RoleExit, 1<<20, "127.0.0.1"))
	}
	deadOf := func(guards []peer.ID) map[peer.ID]bool {
		dead := map[peer.ID]bool{guards[0]: true}
		for _, r := range relays {
			if len(dead) < 3 && !slices.Contains(guards, r.PeerID) {
				dead[r.PeerID] = true
			}
		}
		return dead
	}
	const trials = 400
	failed := 0
	for seed := range uint64(trials) {
		failed += deadRelayTrial(t, relays, deadOf, seed, 12, 8)
	}
	if failed > 0 {
		t.Fatalf("%d of %d requests failed with 4 of 7 relays up", failed, trials*12)
	}
}

// blamed puts a guard's "could not reach the next hop" on that hop alone,
// a guard's "clock-skew" on no relay, and any other build failure on every
// relay after the guard.
func TestBlamed(t *testing.T) {
	path := []*candidate{{}, {}, {}}
	for _, tc := range []struct {
		err  error
		want []*candidate
	}{
		{&circuit.DestroyedError{Reason: circuit.DestroyConnectFailed}, path[1:2]},
		{&circuit.DestroyedError{Reason: circuit.DestroyNoSuchRelay}, path[1:2]},
		{&circuit.DestroyedError{Reason: circuit.DestroyDestroyed}, path[1:]},
		{&circuit.DestroyedError{Reason: circuit.DestroyHandshake}, path[1:]},
		{errors.New("timeout"), path[1:]},
	} {
		got := blamed(path, tc.err)
		if len(got) != len(tc.want) || &got[0] != &tc.want[0] {
			t.Errorf("blamed for %v: %d relays from hop %d, want %d from hop %d", tc.err, len(got), 3-cap(got), len(tc.want), 3-cap(tc.want))
		}
	}
	if got := blamed(path, &circuit.DestroyedError{Reason: circuit.DestroyClockSkew}); len(got) != 0 {
		t.Errorf("a guard that finds the client's clock off blames %d relays", len(got))
	}
}

// Run's first pass may record a new client's first view between a path
// choice's weighing of the relays and its look at the guards' history.
// The weights taken before gave no relay an exit weight (none had been
// seen long enough); the choice weighs again and finds a path. Without
// that, a new client's first request could fail with no path, as a
// paid test network's once did.
func TestFirstViewRecordedDuringAChoice(t *testing.T) {
	var relays []*descriptor.Relay
	for range 3 {
		relays = append(relays, fakeRelay(t, descriptor.RoleGuard|descriptor.RoleExit, 1<<20, "127.0.0.1"))
	}
	m, err := NewCircuitManager(Config{Links: new(link.Manager), Directory: DirectoryFunc(func() []*descriptor.Relay { return relays }),
		AllowSameSubnet: true, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	m.afterWeigh = func() { m.refreshGuards(m.candidates(testNow), testNow) } // as Run's housekeeping does
	if _, err := m.choosePath(80, nil); err != nil {
		t.Fatalf("first choice, the view recorded meanwhile: %v", err)
	}
}
