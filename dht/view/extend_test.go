package view_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/router"
)

// queryLog counts the DHT requests the relays of a network serve, by key.
type queryLog struct {
	mu   sync.Mutex
	keys map[string]int
}

func (q *queryLog) observe(_ int, key string) {
	q.mu.Lock()
	q.keys[key]++
	q.mu.Unlock()
}

func (q *queryLog) reset() {
	q.mu.Lock()
	clear(q.keys)
	q.mu.Unlock()
}

func (q *queryLog) count(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.keys[key]
}

// startRouter runs a router on h whose next hops come from dir.
func startRouter(t *testing.T, h host.Host, dir router.Directory) circuit.OnionKey {
	onion, err := circuit.GenerateOnionKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := router.New(h, router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rt.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return onion
}

// A relay extends a circuit to the next hop from its view alone: building
// a circuit through relays whose views are complete sends no DHT request
// naming any hop, and an extend to a relay outside the view is refused
// without one either. The control lookup shows the log sees lookups.
func TestExtendIssuesNoDHTQuery(t *testing.T) {
	qs := &queryLog{keys: map[string]int{}}
	net := dhttest.NewCluster(t, 5, dhttest.Options{Gossip: true, OnQuery: qs.observe})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allViewsComplete(t, ctx, net)
	hops := make([]client.Hop, len(net.Relays))
	for i, r := range net.Relays {
		onion := startRouter(t, r.Host, r.View)
		hops[i] = client.Hop{Peer: dhttest.AddrInfo(r.Host), OnionKey: onion.Public}
	}
	// A relay with a router but no descriptor anywhere.
	stranger := newHost(t)
	strangerHop := client.Hop{Peer: dhttest.AddrInfo(stranger), OnionKey: startRouter(t, stranger, view.NewSet(nil)).Public}

	ch := newHost(t)
	links := link.NewManager(ch, link.Config{})
	links.Start()
	defer links.Close()
	build := func(path ...client.Hop) error {
		bctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		c, err := client.Build(bctx, links, path)
		if err == nil {
			c.Close()
		}
		return err
	}
	qs.reset() // the network's start looked every relay up
	if err := build(hops[1], hops[2], hops[3]); err != nil {
		t.Fatalf("build through views: %v", err)
	}
	for i, r := range net.Relays {
		if n := qs.count(dht.RelayKey(r.ID())); n != 0 {
			t.Errorf("%d DHT requests named relay %d while a circuit was built", n, i)
		}
	}
	if err := build(hops[1], strangerHop); err == nil {
		t.Fatal("a relay extended to a relay outside its view")
	}
	if n := qs.count(dht.RelayKey(stranger.ID())); n != 0 {
		t.Errorf("%d DHT requests named the unknown relay", n)
	}
	// Control: a lookup, as a relay that looked next hops up would make,
	// shows in the log.
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	net.Relays[1].Node.LookupRelay(lctx, stranger.ID())
	lcancel()
	if qs.count(dht.RelayKey(stranger.ID())) == 0 {
		t.Fatal("the query log does not see lookups")
	}
}
