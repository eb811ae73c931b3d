package dht

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

func TestCachePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relays.cache")
	now := testNow
	c := NewCache(path, func() time.Time { return now })
	var ids []string
	for i := range 5 {
		key, id := newKey(t)
		life := time.Hour
		if i == 0 {
			life = time.Minute
		}
		if _, err := c.Put(relayRecord(t, key, 1, func(r *descriptor.Relay) { r.Expires = now.Add(life).Unix() })); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, string(id))
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode %v", fi.Mode())
	}
	// Append a damaged tail: it must be ignored, not fail the load.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{0x0f, 0xff, 1, 2, 3})
	f.Close()

	now = now.Add(10 * time.Minute) // the first relay has expired
	c2 := NewCache(path, func() time.Time { return now })
	if err := c2.Load(); err != nil {
		t.Fatal(err)
	}
	if got := len(c2.Relays()); got != 4 {
		t.Fatalf("loaded %d relays, want 4", got)
	}
	for _, id := range ids[1:] {
		if _, ok := c2.Get(peerID(id)); !ok {
			t.Fatalf("relay %x missing after reload", id)
		}
	}
}

func TestCacheKeepsHigherSeq(t *testing.T) {
	c := NewCache("", func() time.Time { return testNow })
	key, id := newKey(t)
	c.Put(relayRecord(t, key, 7, nil))
	c.Put(relayRecord(t, key, 3, nil))
	if r, _ := c.Get(id); r.Seq != 7 {
		t.Fatalf("seq %d, want 7", r.Seq)
	}
}

func FuzzCacheFile(f *testing.F) {
	key, _ := newKey(f)
	rec := relayRecord(f, key, 1, nil)
	f.Add(append([]byte{byte(len(rec) >> 8), byte(len(rec))}, rec...))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		frames := splitFrames(b)
		total := 0
		for _, fr := range frames {
			if len(fr) == 0 || len(fr) > descriptor.MaxSize {
				t.Fatal("frame out of bounds")
			}
			total += 2 + len(fr)
		}
		if total > len(b) {
			t.Fatal("frames longer than input")
		}
		c := NewCache("", func() time.Time { return testNow })
		for _, fr := range frames {
			c.Put(fr)
		}
	})
}

func peerID(s string) peer.ID { return peer.ID(s) }
