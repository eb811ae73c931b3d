package dht_test

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
)

// A client's cached descriptors past half their lifetime are looked up
// again (Refresh, and Sample's fetches), so that the relays it knows do
// not all expire at once while they keep republishing.
func TestRefreshRenewsDescriptors(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	var offset atomic.Int64 // the shared clock's lead, seconds
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load()) * time.Second) }
	net := dhttest.NewCluster(t, 6, dhttest.Options{Lifetime: time.Hour, Interval: 500 * time.Millisecond, Now: clock})
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: key})
	if err != nil {
		t.Fatal(err)
	}
	client, err := dht.Open(h, dht.Config{Mode: dht.ModeClient, Bootstrap: net.Bootstrap(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := client.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	cache := dht.NewCache("", clock)
	if _, err := client.Sample(ctx, 6, cache, nil); err != nil {
		t.Fatal(err)
	}
	before := map[string]int64{}
	for _, r := range cache.Relays() {
		before[string(r.PeerID)] = r.Published
	}
	if n := client.Refresh(ctx, cache); n != 0 {
		t.Fatalf("refreshed %d fresh descriptors", n)
	}

	offset.Store(40 * 60) // past half the hour; the relays republish
	deadline := time.Now().Add(30 * time.Second)
	renewed := 0
	for renewed < len(before) && time.Now().Before(deadline) {
		renewed += client.Refresh(ctx, cache)
		time.Sleep(200 * time.Millisecond)
	}
	if renewed < len(before) {
		t.Fatalf("renewed %d of %d descriptors", renewed, len(before))
	}
	for _, r := range cache.Relays() {
		if r.Published <= before[string(r.PeerID)] {
			t.Errorf("relay %s still has its first descriptor", r.PeerID)
		}
	}
	// 35 minutes later the first descriptors would all have expired;
	// the renewed ones have not.
	offset.Store(75 * 60)
	if got := len(cache.Relays()); got != len(before) {
		t.Fatalf("%d of %d relays known after the first descriptors' expiry", got, len(before))
	}
}
