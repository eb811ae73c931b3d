package relaynet_test

import (
	"context"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/circuittest"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/relaynet"
)

// A network carries a circuit through its relays to a loopback server;
// a relay restarted on a new host is listed and reached at its new
// address, and carries circuits again.
func TestNetworkCarriesCircuitsAcrossRestart(t *testing.T) {
	port, sum := circuittest.StartDataServer(t)
	nw := relaynet.Start(t, 3, relaynet.Options{})
	fetch := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := nw.Build(ctx, 0, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := c.Dial(ctx, "127.0.0.1", port)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got, err := circuittest.FetchBytes(s, 100000, nil); err != nil || got != sum(100000) {
			t.Fatalf("fetch: %v, or the body differs", err)
		}
	}
	fetch()
	old := nw.Relays[1].ID()
	if err := nw.Restart(1); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, d := range nw.Dir.Relays() {
		ids[d.PeerID.String()] = true
		if !d.Roles.Has(descriptor.RoleGuard | descriptor.RoleExit) {
			t.Errorf("relay %s has roles %v, want guard and exit", d.PeerID, d.Roles)
		}
	}
	if len(ids) != 3 || ids[old.String()] || !ids[nw.Relays[1].ID().String()] {
		t.Fatalf("directory lists %v after relay 1 restarted as %s", ids, nw.Relays[1].ID())
	}
	fetch()
}

// A relay behind an emulated link is dialled at its forwarder only.
func TestDelayedRelayIsReachedThroughItsForwarder(t *testing.T) {
	nw := relaynet.Start(t, 2, relaynet.Options{Link: relaynet.Link{Delay: time.Millisecond}})
	for _, r := range nw.Relays {
		ai, err := nw.Dir.AddrInfo(context.Background(), r.ID())
		if err != nil || len(ai.Addrs) != 1 || !ai.Addrs[0].Equal(r.Addrs[0]) || len(r.Desc.Addrs) != 1 {
			t.Fatalf("relay %d: %v at %v, described at %d addresses", r.Index, err, ai.Addrs, len(r.Desc.Addrs))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := nw.Build(ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
