package router_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/internal/relaynet"
	"github.com/obolnet/obol/router"
)

// heldDirectory answers like its inner directory, but holds every lookup
// of one peer until released: an extend to it dials for as long as the
// test wants.
type heldDirectory struct {
	inner   router.Directory
	peer    func() peer.ID
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (d *heldDirectory) AddrInfo(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	if id == d.peer() {
		d.once.Do(func() { close(d.entered) })
		select {
		case <-d.release:
		case <-ctx.Done():
			return peer.AddrInfo{}, ctx.Err()
		}
	}
	return d.inner.AddrInfo(ctx, id)
}

// A circuit's extend, which holds its hop while it dials the next relay,
// does not hold up the relay's reaping of other circuits' idle streams
// (the reaper passes a hop that is busy and comes back to it), nor what
// the relay reports of its circuits.
func TestSlowExtendDoesNotStallTheReaper(t *testing.T) {
	port := silentServer(t)
	var nw *relaynet.Network
	held := &heldDirectory{
		peer:    func() peer.ID { return nw.Relays[1].Host.ID() },
		entered: make(chan struct{}),
		release: make(chan struct{}),
	}
	defer close(held.release)
	nw = relaynet.Start(t, 2, relaynet.Options{Router: func(r *relaynet.Relay, c *router.Config) {
		if r.Index == 0 {
			c.StreamIdleTimeout = 300 * time.Millisecond
			held.inner = c.Directory
			c.Directory = held
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idle, err := nw.Build(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	s, err := idle.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	go nw.Build(ctx, 0, 1) // its extend to relay 1 waits on the directory
	select {
	case <-held.entered:
	case <-ctx.Done():
		t.Fatal("the extend never looked up the next hop")
	}
	// What the relay knows of its circuits is read without waiting
	// for the dial either (its status page reads it).
	known := make(chan []router.Knowledge, 1)
	go func() { known <- nw.Relays[0].Router.Circuits() }()
	select {
	case ks := <-known:
		if len(ks) != 2 {
			t.Fatalf("the relay knows %d circuits, want 2", len(ks))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Circuits waits for another circuit's extend to dial")
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Read(make([]byte, 1)); endReason(err) != circuit.EndTimeout {
		t.Fatalf("idle stream while another circuit's extend dials: got %v, want END timeout", err)
	}
}
