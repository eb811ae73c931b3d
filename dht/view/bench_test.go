package view_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht/dhttest"
	"github.com/obolnet/obol/dht/view"
)

// BenchmarkView boots a network of relays (100, or OBOL_VIEW_RELAYS) that
// gossip and serve their views, and measures: how long a new client takes
// to hold 99 % of the relays; how much two clients' views differ; how
// long a new descriptor takes to reach 99 % of the relays (once per
// iteration). The bytes a client reads for its view in a day are
// BenchmarkViewDay's.
//
//	go test -run XXX -bench View -benchtime 5x ./dht/view
func BenchmarkView(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("OBOL_VIEW_RELAYS")); err == nil && v > 1 {
		n = v
	}
	start := time.Now()
	net := dhttest.NewCluster(b, n, dhttest.Options{Gossip: true})
	boot := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	quorum := (99*n + 99) / 100
	waitFor(b, ctx, "relay views never reached 99%", func() (bool, string) {
		return relaysHolding(net, func(r *dhttest.Member) bool { return len(r.View.Relays()) >= quorum }) >= quorum, ""
	})
	viewsAt := time.Since(start)

	// Clients start from the bootstrap relay alone.
	var clients []*view.Set
	var clientTime []time.Duration
	var fullBytes, idleRound int
	for range 2 {
		store := view.NewSet(nil)
		s := view.NewSyncer(newHost(b), store, view.SyncConfig{})
		t0 := time.Now()
		for store.Len() < quorum {
			rd, err := s.Sync(ctx, view.Candidates(net.Bootstrap(), store.Relays()))
			if err != nil && ctx.Err() != nil {
				b.Fatal(err)
			}
			fullBytes += rd.Bytes
		}
		clientTime = append(clientTime, time.Since(t0))
		clients = append(clients, store)
		s.Sync(ctx, view.Candidates(net.Bootstrap(), store.Relays())) // up to 3 sources
		rd, _ := s.Sync(ctx, nil)                                     // the sources kept, nothing new
		idleRound = rd.Bytes
	}
	diff := symDiff(clients[0].Relays(), clients[1].Relays())

	var spread []time.Duration
	i := 0
	for b.Loop() {
		src := net.Relays[i%n]
		i++
		old, _ := src.View.Get(src.ID())
		t0 := time.Now()
		src.Publisher.Changed()
		waitFor(b, ctx, "descriptor never reached 99%", func() (bool, string) {
			return relaysHolding(net, func(r *dhttest.Member) bool {
				d, ok := r.View.Get(src.ID())
				return ok && d.Seq > old.Seq
			}) >= quorum, ""
		})
		spread = append(spread, time.Since(t0))
	}
	slices.Sort(spread)

	var recBytes int
	for _, r := range clients[0].Relays() {
		rec, _ := clients[0].Record(r.PeerID)
		recBytes += len(rec)
	}
	avgRec := float64(recBytes) / float64(clients[0].Len())
	b.ReportMetric(boot.Seconds(), "boot-s")
	b.ReportMetric(viewsAt.Seconds(), "relay-views-99pct-s")
	b.ReportMetric(max(clientTime[0], clientTime[1]).Seconds(), "client-99pct-s")
	b.ReportMetric(100*diff, "clients-diff-pct")
	b.ReportMetric(spread[len(spread)/2].Seconds(), "spread-99pct-p50-s")
	b.ReportMetric(spread[len(spread)-1].Seconds(), "spread-99pct-max-s")
	b.ReportMetric(avgRec, "record-B")
	b.ReportMetric(float64(idleRound), "idle-round-B")
	b.ReportMetric(float64(fullBytes)/2/1e3, "first-sync-kB")
}

func relaysHolding(net *dhttest.Cluster, ok func(*dhttest.Member) bool) int {
	c := 0
	for _, r := range net.Relays {
		if ok(r) {
			c++
		}
	}
	return c
}

// symDiff is the share of the union of two views held by one only.
func symDiff(a, b []*descriptor.Relay) float64 {
	in := map[peer.ID]int{}
	for _, r := range a {
		in[r.PeerID]++
	}
	for _, r := range b {
		in[r.PeerID]++
	}
	only := 0
	for _, c := range in {
		if c == 1 {
			only++
		}
	}
	return float64(only) / float64(max(len(in), 1))
}
