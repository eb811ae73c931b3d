package dht_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Every relay of a 30-relay network is found by sampling and by lookup.
func TestThirtyRelaysFoundBySamplingAndLookup(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := dhttest.NewCluster(t, 30, dhttest.Options{})
	client := dhttest.NewClient(t, net.Bootstrap())
	ctx := ctxT(t, 2*time.Minute)

	for _, r := range net.Relays {
		d, _, err := client.LookupRelay(ctx, r.ID())
		if err != nil {
			t.Fatalf("lookup %s: %v", r.ID(), err)
		}
		if d.PeerID != r.ID() {
			t.Fatalf("lookup returned %s for %s", d.PeerID, r.ID())
		}
	}

	want := map[peer.ID]bool{}
	for _, r := range net.Relays {
		want[r.ID()] = true
	}
	cache := dht.NewCache("", nil)
	for i := 0; i < 40 && len(cache.Relays()) < len(want); i++ {
		got, err := client.Sample(ctx, 10, cache, nil)
		if err != nil {
			t.Fatalf("sample: %v", err)
		}
		seen := map[peer.ID]bool{}
		for _, d := range got {
			if !want[d.PeerID] || seen[d.PeerID] {
				t.Fatalf("sample returned unknown or duplicate relay %s", d.PeerID)
			}
			seen[d.PeerID] = true
		}
	}
	if n := len(cache.Relays()); n != len(want) {
		t.Fatalf("sampling found %d of %d relays", n, len(want))
	}
	t.Run("NotSkewed", func(t *testing.T) { testSamplingNotSkewed(t, net, client) })
}

// Sampling is not badly skewed: over many samples no relay appears more
// than three times its expected frequency, and every relay appears.
func testSamplingNotSkewed(t *testing.T, net *dhttest.Cluster, client *dht.Node) {
	const rounds, k = 150, 3
	relays := len(net.Relays)
	ctx := ctxT(t, 3*time.Minute)
	cache := dht.NewCache("", nil)
	count := map[peer.ID]int{}
	for range rounds {
		got, err := client.Sample(ctx, k, cache, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range got {
			count[d.PeerID]++
		}
	}
	expected := float64(rounds*k) / float64(relays)
	for _, r := range net.Relays {
		c := count[r.ID()]
		if float64(c) > 3*expected || c == 0 {
			t.Errorf("relay %s sampled %d times, expected about %.0f", r.ID(), c, expected)
		}
	}
}

// A filter restricts what Sample returns.
func TestSampleFilter(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := dhttest.NewCluster(t, 12, dhttest.Options{Roles: func(i int) descriptor.Role {
		if i%3 == 0 {
			return descriptor.RoleRelay | descriptor.RoleExit
		}
		return descriptor.RoleRelay
	}})
	client := dhttest.NewClient(t, net.Bootstrap())
	got, err := client.Sample(ctxT(t, time.Minute), 4, nil, func(d *descriptor.Relay) bool {
		return d.Roles.Has(descriptor.RoleExit)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range got {
		if !d.Roles.Has(descriptor.RoleExit) {
			t.Fatalf("filter let a non-exit through")
		}
	}
	if _, err := client.Sample(ctxT(t, time.Minute), 5, nil, func(d *descriptor.Relay) bool {
		return d.Roles.Has(descriptor.RoleExit)
	}); !errors.Is(err, dht.ErrShortSample) {
		t.Fatalf("asking for 5 of 4 exits: got %v, want ErrShortSample", err)
	}
}
