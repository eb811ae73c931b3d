package router_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/internal/relaynet"
	"github.com/obolnet/obol/router"
)

// TestCircuitCapsOnTheWire: one peer cannot hold more circuits than its
// caps, over one channel or several; another peer is not affected.
func TestCircuitCapsOnTheWire(t *testing.T) {
	tn := newTestNet(t, 1, func(_ int, c *router.Config) {
		c.MaxCircuitsPerPeer, c.MaxCircuitsPerChannel = 3, 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := tn.Path(0)
	h := newHost(t)
	t.Cleanup(func() { h.Close() })
	first := dialRawLinkFrom(ctx, t, h, path[0].Peer)
	second := dialRawLinkFrom(ctx, t, h, path[0].Peer)
	other := dialRawLink(ctx, t, path[0].Peer)
	steps := []struct {
		l    *rawLink
		want string // "" for built, else a substring of the refusal
	}{
		{first, ""},
		{first, ""},
		{first, "resource-limit"}, // the channel's cap
		{second, ""},
		{second, "resource-limit"}, // the peer's cap, on its other channel
		{other, ""},                // another peer
	}
	for i, s := range steps {
		_, err := s.l.build(path)
		switch {
		case s.want == "" && err != nil:
			t.Fatalf("circuit %d: %v", i, err)
		case s.want != "" && (err == nil || !strings.Contains(err.Error(), s.want)):
			t.Fatalf("circuit %d: %v, want a refusal (%s)", i, err, s.want)
		}
	}
	st := tn.Relays[0].Router.Stats()
	if st.RefusedCircuits != 2 || st.Circuits != 4 {
		t.Fatalf("stats: %d circuits, %d refused; want 4 and 2", st.Circuits, st.RefusedCircuits)
	}
}

// relayDirectory is a test directory that knows its relays as relays
// (router.RelayChecker), as a relay's view does.
type relayDirectory struct{ *relaynet.Directory }

func (d relayDirectory) IsRelay(id peer.ID) bool {
	_, err := d.AddrInfo(context.Background(), id)
	return err == nil
}

// Written as an attacker would try it: two client peers open circuits
// through relay 0 to relay 1 until relay 0's channel to relay 1 holds more
// than a client's caps. Relay 1 knows relay 0 as a relay, so it counts
// that channel against a relay's cap, not a client's: an honest client's
// circuit through the same pair is still built.
func TestClientsCannotFillARelayPair(t *testing.T) {
	tn := newTestNet(t, 2, func(_ int, c *router.Config) {
		c.MaxCircuitsPerPeer, c.MaxCircuitsPerChannel = 3, 3
		c.Directory = relayDirectory{c.Directory.(*relaynet.Directory)}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for a := range 2 {
		h := newHost(t)
		lm := link.NewManager(h, link.Config{})
		lm.Start()
		t.Cleanup(func() { lm.Close(); h.Close() })
		for i := range 3 {
			c, err := client.Build(ctx, lm, tn.Path(0, 1))
			if err != nil {
				t.Fatalf("attacker %d, circuit %d: %v", a, i, err)
			}
			t.Cleanup(func() { c.Close() })
		}
	}
	if got := tn.Relays[1].Router.Stats().Circuits; got != 6 {
		t.Fatalf("relay 1 holds %d circuits from relay 0, want the attackers' 6", got)
	}
	c, err := client.Build(ctx, tn.client, tn.Path(0, 1))
	if err != nil {
		t.Fatalf("an honest circuit through the pair the attackers filled: %v", err)
	}
	c.Close()
}
