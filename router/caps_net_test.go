package router_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/router"
)

// TestCircuitCapsOnTheWire: one peer cannot hold more circuits than its
// caps, over one channel or several; another peer is not affected.
func TestCircuitCapsOnTheWire(t *testing.T) {
	tn := newTestNet(t, 1, func(_ int, c *router.Config) {
		c.MaxCircuitsPerPeer, c.MaxCircuitsPerChannel = 3, 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := tn.path(0)
	h := newHost(t)
	t.Cleanup(func() { h.Close() })
	first := dialRawLinkFrom(ctx, t, h, path[0].Peer)
	second := dialRawLinkFrom(ctx, t, h, path[0].Peer)
	other := dialRawLink(ctx, t, path[0].Peer)
	steps := []struct {
		l    *rawLink
		want string // "" for built, else a substring of the refusal
	}{
		{first, ""},
		{first, ""},
		{first, "resource-limit"}, // the channel's cap
		{second, ""},
		{second, "resource-limit"}, // the peer's cap, on its other channel
		{other, ""},                // another peer
	}
	for i, s := range steps {
		_, err := s.l.build(path)
		switch {
		case s.want == "" && err != nil:
			t.Fatalf("circuit %d: %v", i, err)
		case s.want != "" && (err == nil || !strings.Contains(err.Error(), s.want)):
			t.Fatalf("circuit %d: %v, want a refusal (%s)", i, err, s.want)
		}
	}
	st := tn.relays[0].router.Stats()
	if st.RefusedCircuits != 2 || st.Circuits != 4 {
		t.Fatalf("stats: %d circuits, %d refused; want 4 and 2", st.Circuits, st.RefusedCircuits)
	}
}
