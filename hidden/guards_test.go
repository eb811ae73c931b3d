package hidden

import (
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

func testHops(t *testing.T, n int) []client.Hop {
	var hops []client.Hop
	for range n {
		_, pub, _ := crypto.GenerateEd25519Key(rand.Reader)
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		hops = append(hops, client.Hop{Peer: peer.AddrInfo{ID: id}})
	}
	return hops
}

// fakeClock is a settable clock for the guard set.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestGuardSet(file string, clk *fakeClock) *guardSet {
	return &guardSet{file: file, logger: slog.New(slog.DiscardHandler), now: clk.now}
}

func without(hops []client.Hop, ids ...peer.ID) []client.Hop {
	return slices.DeleteFunc(slices.Clone(hops), func(h client.Hop) bool { return slices.Contains(ids, h.Peer.ID) })
}

func mustPick(t *testing.T, s *guardSet, cands []client.Hop, avoid ...peer.ID) (client.Hop, client.Hop) {
	t.Helper()
	m := map[peer.ID]bool{}
	for _, id := range avoid {
		m[id] = true
	}
	g, v, ok := s.pick(cands, nil, m, nil)
	if !ok {
		t.Fatal("no guard and vanguard picked")
	}
	if g.Peer.ID == v.Peer.ID || m[g.Peer.ID] || m[v.Peer.ID] {
		t.Fatalf("picked guard %s, vanguard %s, avoiding %v", g.Peer.ID, v.Peer.ID, avoid)
	}
	return g, v
}

// Guards and vanguards survive a restart through their file, with the
// vanguards' lifetimes; a file of the first version (a list of guards)
// is still read.
func TestGuardSetPersists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hs-guards.json")
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	cands := testHops(t, 12)
	a := newTestGuardSet(file, clk)
	mustPick(t, a, cands)
	guards, vanguards := a.snapshot()
	if len(guards) != guardSetSize || len(vanguards) != vanguardSetSize {
		t.Fatalf("%d guards, %d vanguards", len(guards), len(vanguards))
	}
	for _, g := range guards {
		if slices.Contains(vanguards, g) {
			t.Fatal("a guard is also a vanguard")
		}
	}
	for _, v := range a.vanguards {
		if life := v.Expires.Sub(clk.now()); life < minVanguardLife || life > maxVanguardLife {
			t.Fatalf("vanguard lifetime %v", life)
		}
	}

	b := newTestGuardSet(file, clk)
	for range 20 {
		g, v := mustPick(t, b, cands)
		if !slices.Contains(guards, g.Peer.ID) || !slices.Contains(vanguards, v.Peer.ID) {
			t.Fatalf("after a restart: guard %s vanguard %s, want of %v and %v", g.Peer.ID, v.Peer.ID, guards, vanguards)
		}
	}
	if !slices.EqualFunc(a.vanguards, b.vanguards, func(x, y guardEntry) bool { return x.ID == y.ID && x.Expires.Equal(y.Expires) }) {
		t.Fatal("vanguard lifetimes not kept across a restart")
	}

	old := filepath.Join(t.TempDir(), "v1.json")
	if err := os.WriteFile(old, []byte(`["`+guards[1].String()+`","`+guards[0].String()+`"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newTestGuardSet(old, clk)
	mustPick(t, c, cands)
	if got, _ := c.snapshot(); !slices.Equal(got, []peer.ID{guards[1], guards[0]}) {
		t.Fatalf("version 1 file: guards %v", got)
	}
}

// A guard missing from directory reads is kept, unused, for guardGrace:
// the set neither forgets it nor takes another while a primary is
// listed. With every primary missing a backup serves, and is dropped once
// a primary is back. Only an absence longer than the grace replaces a
// guard.
func TestGuardSurvivesAbsence(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	cands := testHops(t, 12)
	s := newTestGuardSet("", clk)
	mustPick(t, s, cands)
	first, _ := s.snapshot()

	// One guard missing from many reads over a day: the other serves.
	for range 10 {
		clk.add(2 * time.Hour)
		g, _ := mustPick(t, s, without(cands, first[0]))
		if g.Peer.ID != first[1] {
			t.Fatalf("guard %s while %s is missing, want %s", g.Peer.ID, first[0], first[1])
		}
	}
	if got, _ := s.snapshot(); !slices.Equal(got, first) {
		t.Fatalf("set changed to %v during an absence, want %v", got, first)
	}
	// Back: used again.
	seen := map[peer.ID]bool{}
	for range 40 {
		g, _ := mustPick(t, s, cands)
		seen[g.Peer.ID] = true
	}
	if !seen[first[0]] || len(seen) != guardSetSize {
		t.Fatalf("after the absence guards used: %v", seen)
	}

	// Both missing: one backup, dropped when a primary is back.
	g, _ := mustPick(t, s, without(cands, first...))
	if slices.Contains(first, g.Peer.ID) {
		t.Fatal("a missing guard was used")
	}
	if got, _ := s.snapshot(); len(got) != guardSetSize+1 || !slices.Equal(got[:guardSetSize], first) {
		t.Fatalf("with both guards missing the set is %v", got)
	}
	for range 5 {
		mustPick(t, s, without(cands, first...))
	}
	if got, _ := s.snapshot(); len(got) != guardSetSize+1 {
		t.Fatalf("repeated reads without the guards grew the set to %v", got)
	}
	mustPick(t, s, without(cands, first[0]))
	if got, _ := s.snapshot(); !slices.Equal(got, first) {
		t.Fatalf("with a primary back the set is %v, want %v", got, first)
	}

	// Gone for longer than the grace: replaced.
	mustPick(t, s, without(cands, first[0]))
	clk.add(guardGrace + time.Minute)
	mustPick(t, s, without(cands, first[0]))
	got, _ := s.snapshot()
	if slices.Contains(got, first[0]) || !slices.Contains(got, first[1]) || len(got) != guardSetSize {
		t.Fatalf("after %v missing the set is %v", guardGrace, got)
	}
}

// Vanguards are replaced at the end of their lives, one at a time since
// their lifetimes differ, and a few missing ones do not change the set.
func TestVanguardRotation(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	cands := testHops(t, 12)
	s := newTestGuardSet("", clk)
	mustPick(t, s, cands)
	_, first := s.snapshot()
	mustPick(t, s, without(cands, first[0], first[1]))
	if _, got := s.snapshot(); !slices.Equal(got, first) {
		t.Fatalf("two vanguards missing changed the set to %v", got)
	}
	for range 20 {
		if _, v := mustPick(t, s, without(cands, first[0], first[1])); slices.Contains(first[:2], v.Peer.ID) {
			t.Fatal("a missing vanguard was used")
		}
	}
	clk.add(minVanguardLife - time.Minute)
	mustPick(t, s, cands)
	if _, got := s.snapshot(); !slices.Equal(got, first) {
		t.Fatalf("vanguards replaced before a day: %v", got)
	}
	clk.add(maxVanguardLife)
	mustPick(t, s, cands)
	if len(s.vanguards) != vanguardSetSize {
		t.Fatalf("%d vanguards", len(s.vanguards))
	}
	for _, v := range s.vanguards { // each chosen afresh (a relay may be chosen again)
		if life := v.Expires.Sub(clk.now()); life < minVanguardLife || life > maxVanguardLife {
			t.Fatalf("vanguard %s has %v left after %v", v.ID, life, maxVanguardLife)
		}
	}
}

// fakeRelays is a directory of n guard-capable relays that offer every
// hidden-service role.
func fakeRelays(t *testing.T, n int, now time.Time) []*descriptor.Relay {
	addr := ma.StringCast("/ip4/127.0.0.1/udp/1/quic-v1").Bytes()
	var out []*descriptor.Relay
	for _, h := range testHops(t, n) {
		out = append(out, &descriptor.Relay{PeerID: h.Peer.ID, Addrs: [][]byte{addr},
			Roles:     descriptor.RoleRelay | descriptor.RoleGuard | descriptor.RoleIntro | descriptor.RoleRendezvous,
			OnionKeys: []descriptor.OnionKey{{NotAfter: now.Add(24 * time.Hour).Unix()}},
			Protocols: []uint16{circuit.ProtocolVersion}})
	}
	return out
}

// An attacker runs a tenth of the relays and introduces itself to a
// service a thousand times, each time naming one of its own relays as the
// rendezvous point. The relays next to its points — the previous hops of
// the service's rendezvous circuits — are only the service's vanguards
// (at most four), never its guard; without vanguards (a random middle)
// they would be most of the network, and each one the attacker runs would
// see the guard.
func TestRendezvousPointSeesOnlyVanguards(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	relays := fakeRelays(t, 60, clk.now())
	n := Config{Directory: client.DirectoryFunc(func() []*descriptor.Relay { return relays }), Now: clk.now}.withDefaults()
	n.guards.now = clk.now
	attacker := map[peer.ID]bool{}
	for _, r := range relays[:6] {
		attacker[r.PeerID] = true
	}
	adjacent := map[peer.ID]int{}
	var guardsSeen int
	for i := range 1000 {
		rp, _ := hopFor(relays[i%6], clk.now())
		path, err := n.pathTo(&rp, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(path) != pathLen || path[pathLen-1].Peer.ID != rp.Peer.ID {
			t.Fatalf("path %v", path)
		}
		adjacent[path[pathLen-2].Peer.ID]++
		if attacker[path[pathLen-2].Peer.ID] {
			guardsSeen++ // an attacker's vanguard sees the guard
		}
	}
	guards, vanguards := n.guards.snapshot()
	for id := range adjacent {
		if slices.Contains(guards, id) {
			t.Fatalf("the service's guard %s was next to the attacker's rendezvous point", id)
		}
		if !slices.Contains(vanguards, id) {
			t.Fatalf("relay %s next to the rendezvous point is no vanguard", id)
		}
	}
	if len(adjacent) > vanguardSetSize {
		t.Fatalf("%d relays next to the rendezvous points, more than %d vanguards", len(adjacent), vanguardSetSize)
	}
	t.Logf("1000 rendezvous: %d distinct relays next to the attacker's points (%v); guard seen by an attacker's vanguard %d times",
		len(adjacent), adjacent, guardsSeen)
}

// The client and the services of one node share one guard set, and so
// one GuardFile, when given copies of a shared Network: two sets written
// to one file would each replace the other's guards at every restart.
func TestSharedNetworkSharesGuards(t *testing.T) {
	n := Config{GuardFile: filepath.Join(t.TempDir(), "hs-guards.json")}.Shared()
	client, service := n.withDefaults(), ServiceConfig{Config: n}.withDefaults().Config
	if client.guards == nil || client.guards != service.guards {
		t.Fatal("the copies of a shared network keep guard sets of their own")
	}
	if a, b := (Config{}).withDefaults(), (Config{}).withDefaults(); a.guards == b.guards {
		t.Fatal("two networks not shared share a guard set")
	}
}

// With one of its two guards missing from the directory, a client still
// finds a path to a rendezvous point it chooses: the last hop is chosen
// among the relays other than its guard and vanguard, never one that
// leaves no guard for the path.
func TestPathWithOneGuardMissing(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	all := fakeRelays(t, 8, clk.now())
	relays := all
	n := Config{Directory: client.DirectoryFunc(func() []*descriptor.Relay { return relays }), Now: clk.now}.withDefaults()
	n.guards.now = clk.now
	if _, err := n.pathTo(nil, descriptor.RoleRendezvous, nil); err != nil {
		t.Fatal(err)
	}
	guards, _ := n.guards.snapshot()
	relays = slices.DeleteFunc(slices.Clone(all), func(r *descriptor.Relay) bool { return r.PeerID == guards[0] })
	for i := range 500 {
		path, err := n.pathTo(nil, descriptor.RoleRendezvous, nil)
		if err != nil {
			t.Fatalf("path %d with one guard missing: %v", i, err)
		}
		if path[0].Peer.ID != guards[1] || path[2].Peer.ID == path[0].Peer.ID || path[2].Peer.ID == path[1].Peer.ID {
			t.Fatalf("path %d: %v (guards %v)", i, path, guards)
		}
	}
}

// A rendezvous circuit takes a guard and a vanguard that prefer holds
// for (those with a standby channel ready) where the set has some, and
// any of the set where it has none.
func TestPickPrefersStockedRelays(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	cands := testHops(t, 12)
	s := newTestGuardSet("", clk)
	mustPick(t, s, cands) // chooses the set
	stocked := map[peer.ID]bool{s.guards[1].ID: true, s.vanguards[2].ID: true}
	prefer := func(id peer.ID) bool { return stocked[id] }
	for range 50 {
		g, v, ok := s.pick(cands, nil, nil, prefer)
		if !ok || !stocked[g.Peer.ID] || !stocked[v.Peer.ID] {
			t.Fatalf("picked guard %s, vanguard %s; want the stocked ones", g.Peer.ID, v.Peer.ID)
		}
	}
	none := func(peer.ID) bool { return false }
	guards := map[peer.ID]bool{}
	for range 50 {
		g, _, ok := s.pick(cands, nil, nil, none)
		if !ok {
			t.Fatal("nothing stocked: no path at all")
		}
		guards[g.Peer.ID] = true
	}
	if len(guards) != guardSetSize {
		t.Errorf("with nothing stocked, %d of the %d guards used", len(guards), guardSetSize)
	}
}

// stockedPayer is a StandbyPayer with channels ready for some relays.
type stockedPayer struct{ ready map[peer.ID]bool }

func (stockedPayer) Stock([]*descriptor.Relay) {}
func (stockedPayer) Pay(path []*descriptor.Relay) (client.PayConfig, error) {
	return client.PayConfig{Hops: make([]client.HopPayment, len(path))}, nil
}
func (s stockedPayer) Stocked(r *descriptor.Relay) bool { return s.ready[r.PeerID] }

// A service's rendezvous paths go through the guard and vanguard its
// standby payer has channels ready for; its other circuits do not care.
func TestRendezvousPathsPreferStockedRelays(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	relays := fakeRelays(t, 10, clk.now())
	sp := stockedPayer{ready: map[peer.ID]bool{}}
	n := Config{Directory: client.DirectoryFunc(func() []*descriptor.Relay { return relays }), Now: clk.now, Standby: sp}.withDefaults()
	n.guards.now = clk.now
	last, ok := hopFor(relays[9], clk.now())
	if !ok {
		t.Fatal("no hop for the rendezvous point")
	}
	if _, err := n.pathTo(&last, 0, nil); err != nil { // chooses the sets
		t.Fatal(err)
	}
	guards, vanguards := n.guards.snapshot()
	g, v := guards[len(guards)-1], vanguards[len(vanguards)-1]
	if g == last.Peer.ID || v == last.Peer.ID {
		t.Skip("the rendezvous point is in the guard layers")
	}
	sp.ready[g], sp.ready[v] = true, true
	rv := n.forRendezvous()
	for range 50 {
		path, err := rv.pathTo(&last, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if path[0].Peer.ID != g || path[1].Peer.ID != v {
			t.Fatalf("rendezvous path %v, want guard %s and vanguard %s, the stocked ones", path, g, v)
		}
	}
}

// The guards of a node's hidden-service circuits are taken first from
// its exit circuits' guards (PreferGuards), so that fewer relays see the
// node; a preferred relay that is not a candidate is passed over.
func TestGuardsPreferTheExitGuards(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	cands := testHops(t, 12)
	s := newTestGuardSet("", clk)
	gone := testHops(t, 1)[0].Peer.ID // not a candidate
	want := []peer.ID{cands[7].Peer.ID, cands[3].Peer.ID}
	s.prefer = func() []peer.ID { // its own guards too, as a node's sets are told
		own, _ := s.snapshot()
		return append([]peer.ID{gone, want[0], want[1]}, own...)
	}
	mustPick(t, s, cands)
	guards, vanguards := s.snapshot()
	if !slices.Equal(guards, want) {
		t.Fatalf("guards %v, want the preferred candidates %v", guards, want)
	}
	for _, v := range vanguards {
		if slices.Contains(want, v) {
			t.Fatalf("vanguard %s is also a guard", v)
		}
	}
}
