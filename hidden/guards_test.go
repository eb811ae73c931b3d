package hidden

import (
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
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

// The guard set survives a restart through its file; a cold directory
// that lacks a persisted guard does not make the set forget it, a warm
// one does.
func TestGuardSetPersists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hs-guards.json")
	log := slog.New(slog.DiscardHandler)
	cands := testHops(t, 10)
	a := &guardSet{file: file, logger: log}
	if _, ok := a.pick(cands, ""); !ok {
		t.Fatal("no guard picked")
	}
	first := slices.Clone(a.ids)
	if len(first) != guardSetSize {
		t.Fatalf("%d guards", len(first))
	}

	b := &guardSet{file: file, logger: log}
	for range 20 {
		g, ok := b.pick(cands, "")
		if !ok || !slices.Contains(first, g.Peer.ID) {
			t.Fatalf("after a restart: guard %v (ok %v), want one of %v", g.Peer.ID, ok, first)
		}
	}

	// A cold directory holding one of the two guards and little else.
	var kept client.Hop
	for _, c := range cands {
		if c.Peer.ID == first[1] {
			kept = c
		}
	}
	var other client.Hop // a candidate that is neither guard
	for _, c := range cands {
		if !slices.Contains(first, c.Peer.ID) {
			other = c
		}
	}
	cold := []client.Hop{kept, other}
	c := &guardSet{file: file, logger: log}
	for range 20 {
		if g, ok := c.pick(cold, ""); !ok || g.Peer.ID != first[1] {
			t.Fatalf("cold directory: guard %v (ok %v), want %v", g.Peer.ID, ok, first[1])
		}
	}
	if !slices.Equal(c.ids, first) {
		t.Fatalf("cold directory changed the set to %v, want %v", c.ids, first)
	}

	// A warm directory without the first guard replaces it, and the file
	// says so.
	var warm []client.Hop
	for _, h := range cands {
		if h.Peer.ID != first[0] {
			warm = append(warm, h)
		}
	}
	c.pick(warm, "")
	if slices.Contains(c.ids, first[0]) || !slices.Contains(c.ids, first[1]) || len(c.ids) != guardSetSize {
		t.Fatalf("warm directory: set %v", c.ids)
	}
	d := &guardSet{file: file, logger: log}
	d.mu.Lock()
	d.load()
	d.mu.Unlock()
	if !slices.Equal(d.ids, c.ids) {
		t.Fatalf("file holds %v, want %v", d.ids, c.ids)
	}
}
