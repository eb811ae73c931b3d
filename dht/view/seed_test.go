package view

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/dht"
)

// A relay without bootstrap peers and with an empty view (a seed that
// restarted) takes its view from the relays connected to it: they serve
// one, and nothing else would make it sync before gossip reached it.
func TestViewFromConnectedRelays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	full := NewSet(nil)
	var want []peer.ID
	for i := range 3 {
		r := newTestRelay(t, byte(10+i), fmt.Sprintf("10.%d.0.1", 10+i))
		if _, err := full.Put(r.rec(t, 1, now)); err != nil {
			t.Fatal(err)
		}
		want = append(want, r.id)
	}
	serving := seedTestHost(t)
	stop := Serve(serving, full)
	defer stop()

	seed := seedTestHost(t)
	g := NewGossip(seed, NewSet(nil), GossipConfig{AllowSameSubnet: true})
	done := make(chan error, 1)
	gctx, gstop := context.WithCancel(ctx)
	go func() { done <- g.Run(gctx) }()
	defer func() { gstop(); <-done }()
	if err := serving.Connect(ctx, peer.AddrInfo{ID: seed.ID(), Addrs: seed.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for {
		n := 0
		for _, id := range want {
			if g.Set().IsRelay(id) {
				n++
			}
		}
		if n == len(want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the seed's view holds %d of the %d relays of the peer connected to it", n, len(want))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func seedTestHost(tb testing.TB) host.Host {
	tb.Helper()
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: k})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}
