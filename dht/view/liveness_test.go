package view

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/dht"
)

// clock is a settable clock shared by the relays' views and the client.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// A relay that stops leaves a client's view within Silent and a round,
// though its record lives a day: its sources list it as gone. It stays
// while any one source still holds it — a source cannot take a relay
// away from a client alone — and a restarted client, whose cache still
// has it, drops it after its first round.
func TestStoppedRelayLeavesClientViews(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	relays := make([]*testRelay, 5)
	for i := range relays {
		relays[i] = newTestRelay(t, byte(40+i), "10.9.0.1")
	}
	stopped := relays[4]
	const day = 24 * time.Hour
	clocks := make([]*clock, 3)
	sets := make([]*Set, 3)
	var srcs []peer.AddrInfo
	for i := range sets {
		clocks[i] = &clock{now: start}
		sets[i] = NewSet(clocks[i].Now)
		h := seedTestHost(t)
		Serve(h, sets[i])
		srcs = append(srcs, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	}
	// publish offers every running relay's record, published at at, to
	// the sources whose clocks are at.
	seq := uint64(0)
	publish := func(at time.Time, which []int, rs []*testRelay) {
		seq++
		for _, i := range which {
			clocks[i].Set(at)
			for _, r := range rs {
				if _, _, err := sets[i].Offer(r.sign(t, r.body(seq, at, day))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	all := []int{0, 1, 2}
	publish(start, all, relays)

	cc := &clock{now: start}
	cache := dht.NewCache("", cc.Now)
	client := NewSyncer(seedTestHost(t), cache, SyncConfig{AllowSameSubnet: true, Now: cc.Now})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sync := func() Round {
		t.Helper()
		rd, err := client.Sync(ctx, srcs)
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	if rd := sync(); len(cache.Relays()) != 5 || rd.Gone != 0 {
		t.Fatalf("first round: %d relays, %d gone", len(cache.Relays()), rd.Gone)
	}
	// The others republish every 30 minutes; the stopped one does not.
	// Two sources hear it; the third's clock stands still.
	at := start
	for at.Sub(start) <= Silent {
		at = at.Add(30 * time.Minute)
		publish(at, []int{0, 1}, relays[:4])
	}
	cc.Set(at)
	if rd := sync(); rd.Gone != 0 {
		t.Fatalf("a relay one source still holds was dropped (%d gone)", rd.Gone)
	}
	if _, ok := cache.Get(stopped.id); !ok {
		t.Fatal("a relay one source still holds left the view")
	}
	publish(at, []int{2}, relays[:4])
	rd := sync()
	if _, ok := cache.Get(stopped.id); ok || rd.Gone != 1 || len(cache.Relays()) != 4 {
		t.Fatalf("stopped relay still in the view (%d gone, %d relays)", rd.Gone, len(cache.Relays()))
	}
	if rd.Fetched != 0 {
		t.Fatalf("%d records fetched for republishes with nothing new", rd.Fetched)
	}

	// A restarted client: its cache still holds the stopped relay.
	old := dht.NewCache("", cc.Now)
	for _, r := range relays {
		old.Put(r.sign(t, r.body(1, start, day)))
	}
	fresh := NewSyncer(seedTestHost(t), old, SyncConfig{AllowSameSubnet: true, Now: cc.Now})
	rd, err := fresh.Sync(ctx, srcs)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := old.Get(stopped.id); ok || rd.Gone != 1 {
		t.Fatalf("restarted client kept the stopped relay (%d gone)", rd.Gone)
	}
}
