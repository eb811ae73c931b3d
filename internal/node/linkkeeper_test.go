package node

import (
	"context"
	"log/slog"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/internal/relaynet"
)

// A relay behind a cone NAT dials the public relays it is not connected
// to, protects those connections from trimming, and lets go of relays
// that left its view.
func TestLinkKeeperHoldsPublicRelays(t *testing.T) {
	h := relaynet.TestHost(t)
	var public []peer.AddrInfo
	for range 3 {
		p := relaynet.TestHost(t)
		public = append(public, peer.AddrInfo{ID: p.ID(), Addrs: p.Addrs()})
	}
	view := public
	k := &linkKeeper{h: h, max: DefaultKeptLinks, candidates: func() []peer.AddrInfo { return view }, log: slog.New(slog.DiscardHandler),
		kept: map[peer.ID]bool{}}
	if n := k.round(context.Background()); n != 3 {
		t.Fatalf("connected to %d of 3 public relays", n)
	}
	for _, p := range public {
		if h.Network().Connectedness(p.ID) != network.Connected {
			t.Errorf("no connection to %s", p.ID)
		}
		if !h.ConnManager().IsProtected(p.ID, keptLinkTag) {
			t.Errorf("connection to %s not protected", p.ID)
		}
	}
	view = public[1:]
	if n := k.round(context.Background()); n != 2 {
		t.Fatalf("connected to %d of 2 public relays", n)
	}
	if h.ConnManager().IsProtected(public[0].ID, keptLinkTag) {
		t.Error("a relay that left the view is still protected")
	}
	// With room for one, it keeps one, the same in every round.
	k.max = 1
	view = public
	k.round(context.Background())
	var kept peer.ID
	for id := range k.kept {
		kept = id
	}
	if len(k.kept) != 1 {
		t.Fatalf("keeps %d connections, want 1", len(k.kept))
	}
	k.round(context.Background())
	if !k.kept[kept] || len(k.kept) != 1 {
		t.Error("the relay kept changed between rounds")
	}
}
