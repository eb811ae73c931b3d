package node

import (
	"context"
	"crypto/rand"
	"log/slog"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
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

// The choice of kept connections depends on the relay and the set of
// public relays alone, not on their order: another relay with (nearly)
// the same view names the same relays, which is what lets it pick a
// callback's forwarder. All of them are kept when they are few enough.
func TestKeptChoiceIsTheRelays(t *testing.T) {
	self := randomID(t)
	var cands []peer.AddrInfo
	for range 40 {
		cands = append(cands, peer.AddrInfo{ID: randomID(t)})
	}
	if got := keptChoice(self, cands, 40); len(got) != 40 {
		t.Fatalf("%d of 40 kept with room for 40", len(got))
	}
	a := keptChoice(self, slices.Clone(cands), 10)
	shuffled := slices.Clone(cands)
	slices.Reverse(shuffled)
	b := keptChoice(self, shuffled, 10)
	if len(a) != 10 || !slices.EqualFunc(a, b, func(x, y peer.AddrInfo) bool { return x.ID == y.ID }) {
		t.Fatalf("the choice depends on the order of the view: %v / %v", a, b)
	}
	if c := keptChoice(randomID(t), cands, 10); slices.EqualFunc(a, c, func(x, y peer.AddrInfo) bool { return x.ID == y.ID }) {
		t.Fatal("two relays keep the same choice")
	}
}

func randomID(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
