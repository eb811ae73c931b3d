package obol_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/descriptor"
)

// Two relays make a network: the second joins through the first, which
// then finds its descriptor; both stop when their context ends, and a
// relay runs once. A relay without a data directory is refused by
// NewRelay, before anything starts.
func TestRelaysJoin(t *testing.T) {
	if _, err := obol.NewRelay(obol.RelayConfig{}); err == nil {
		t.Fatal("a relay without a data directory was accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first := startRelay(t, ctx, obol.RelayConfig{DataDir: t.TempDir()})
	boot, err := first.r.AddrInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second := startRelay(t, ctx, obol.RelayConfig{DataDir: t.TempDir(), Bootstrap: []peer.AddrInfo{boot},
		Roles: descriptor.RoleGuard | descriptor.RoleExit, AllowLoopback: true})
	id, err := second.r.AddrInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The relays may not have published yet: a client that finds none
	// fails, and another is started. Once joined, it samples again every
	// 100 ms until it has found the second relay.
	var c *obol.Client
	var stopClient context.CancelFunc
	clientDone := make(chan error, 1)
	for c == nil {
		cl, err := obol.NewClient(obol.ClientConfig{Bootstrap: []peer.AddrInfo{boot}, Sample: 10, Resample: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		go func() { clientDone <- cl.Run(cctx) }()
		if err := cl.Joined(ctx); err == nil {
			c, stopClient = cl, cancel
			break
		}
		cancel()
		<-clientDone
		select {
		case <-ctx.Done():
			t.Fatal("no relay ever published")
		case <-time.After(50 * time.Millisecond):
		}
	}
	for found := false; !found; {
		for _, r := range c.Known() {
			found = found || r.PeerID == id.ID
		}
		if !found {
			select {
			case <-ctx.Done():
				t.Fatal("the client never learned the second relay")
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	stopClient()
	if err := <-clientDone; err != nil {
		t.Fatal(err)
	}
	if err := first.r.Run(ctx); err == nil {
		t.Fatal("a second Run was not refused")
	}
	for _, r := range []*runningRelay{second, first} {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Fatal(err)
		}
	}
}

type runningRelay struct {
	r      *obol.Relay
	cancel context.CancelFunc
	done   chan error
}

func startRelay(t *testing.T, ctx context.Context, cfg obol.RelayConfig) *runningRelay {
	t.Helper()
	r, err := obol.NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	rr := &runningRelay{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(cancel)
	return rr
}
