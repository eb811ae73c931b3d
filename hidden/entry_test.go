package hidden

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
)

// A node's hidden-service circuits start at the guards of its circuit
// manager (Config.Entry), whatever their own guard file held before, and
// take no vanguard among those guards; no relay over the manager's price
// limit takes any place they choose, and an intro point over it, named
// by a service's descriptor, is refused rather than paid. Without Entry
// these circuits kept a guard set of their own and ignored the price
// limit.
func TestCircuitsTakeTheNodesGuardsAndLimits(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	relays := fakeRelays(t, 30, clk.now())
	dear := map[peer.ID]bool{}
	for _, r := range relays[:10] {
		r.Price = descriptor.Price{PerMiB: 1_000_000}
		dear[r.PeerID] = true
	}
	dir := client.DirectoryFunc(func() []*descriptor.Relay { return relays })
	file := filepath.Join(t.TempDir(), "hs-guards.json")

	// The file as a node without Entry left it: guards of its own.
	before := Config{Directory: dir, Now: clk.now, GuardFile: file}.withDefaults()
	before.guards.now = clk.now
	if _, err := before.pathTo(nil, descriptor.RoleRendezvous, nil); err != nil {
		t.Fatal(err)
	}
	oldGuards, _ := before.guards.snapshot()

	mgr, err := client.NewCircuitManager(client.Config{Links: new(link.Manager), Directory: dir, Now: clk.now,
		AllowSameSubnet: true, MinGuardAge: -1, MinExitAge: -1, PriceLimit: &client.PriceLimit{PerMiB: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	n := Config{Directory: dir, Now: clk.now, GuardFile: file, Entry: mgr,
		Pay: func([]*descriptor.Relay) (client.PayConfig, error) { return client.PayConfig{}, nil }}.withDefaults()
	n.guards.now = clk.now
	firsts := map[peer.ID]int{}
	for i := range 300 {
		path, err := n.pathTo(nil, descriptor.RoleRendezvous, nil)
		if err != nil {
			t.Fatalf("path %d: %v", i, err)
		}
		guards := mgr.Guards()
		if !slices.Contains(guards, path[0].Peer.ID) {
			t.Fatalf("path %d starts at %s, not at one of the node's guards %v (its own file's were %v)", i, path[0].Peer.ID, guards, oldGuards)
		}
		if slices.Contains(guards, path[1].Peer.ID) {
			t.Fatalf("path %d: vanguard %s is one of the node's guards", i, path[1].Peer.ID)
		}
		for _, h := range path {
			if dear[h.Peer.ID] {
				t.Fatalf("path %d holds %s, over the price limit", i, h.Peer.ID)
			}
		}
		firsts[path[0].Peer.ID]++
	}
	if g, _ := n.guards.snapshot(); len(g) != 0 {
		t.Errorf("the hidden-service guard file still lists guards of its own: %v", g)
	}
	if got := n.Guards(); !slices.Equal(got, mgr.Guards()) {
		t.Errorf("Guards() = %v, want the node's %v", got, mgr.Guards())
	}

	// An intro point the node does not admit, chosen by the service.
	ip := client.Hop{Peer: peer.AddrInfo{ID: relays[0].PeerID}}
	if _, err := n.pathTo(&ip, 0, nil); !errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("path to an intro point over the price limit: %v, want ErrNotAdmitted", err)
	}
	// A service's rendezvous circuit, whose last hop it does not pay
	// (forRendezvous with Standby), goes wherever the client asked.
	unpaid := n
	unpaid.lastUnpaid = true
	if path, err := unpaid.pathTo(&ip, 0, nil); err != nil || path[2].Peer.ID != ip.Peer.ID || dear[path[0].Peer.ID] || dear[path[1].Peer.ID] {
		t.Fatalf("unpaid last hop over the limit: path %v, %v", path, err)
	}

	// A guard its circuits cannot reach is one the node's own circuits
	// retry later: the next circuits start at the other guard.
	g := mgr.Guards()
	if len(g) < 2 {
		t.Fatalf("the node has %d guards", len(g))
	}
	mgr.GuardReached(g[0], false)
	for i := range 20 {
		path, err := n.pathTo(nil, descriptor.RoleRendezvous, nil)
		if err != nil {
			t.Fatal(err)
		}
		if path[0].Peer.ID != g[1] {
			t.Fatalf("path %d starts at %s after guard %s failed, want %s", i, path[0].Peer.ID, g[0], g[1])
		}
	}
}

// On a network of no more relays than the node has guards, a vanguard is
// one of the node's other guards rather than none: the path exists, and
// its guard and vanguard differ.
func TestVanguardAmongGuardsOnATinyNetwork(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	relays := fakeRelays(t, 3, clk.now())
	dir := client.DirectoryFunc(func() []*descriptor.Relay { return relays })
	mgr, err := client.NewCircuitManager(client.Config{Links: new(link.Manager), Directory: dir, Now: clk.now,
		AllowSameSubnet: true, MinGuardAge: -1, MinExitAge: -1, Guards: 3})
	if err != nil {
		t.Fatal(err)
	}
	n := Config{Directory: dir, Now: clk.now, Entry: mgr}.withDefaults()
	n.guards.now = clk.now
	for i := range 50 {
		path, err := n.pathTo(nil, descriptor.RoleRendezvous, nil)
		if err != nil {
			t.Fatalf("path %d: %v", i, err)
		}
		if path[0].Peer.ID == path[1].Peer.ID || path[1].Peer.ID == path[2].Peer.ID || path[0].Peer.ID == path[2].Peer.ID {
			t.Fatalf("path %d repeats a relay: %v", i, path)
		}
	}
	if len(mgr.Guards()) != 3 {
		t.Fatalf("the node has %d guards, want all 3 relays", len(mgr.Guards()))
	}
}
