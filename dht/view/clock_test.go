package view_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/view"
)

// A client whose clock is off learns its sources' clock from their
// digests, and one source that lies about its clock does not move it:
// the offset is the median of three, or of two the one nearer zero.
func TestSyncerClockOffset(t *testing.T) {
	const skew = 3 * time.Minute
	for _, tc := range []struct {
		name   string
		clocks []time.Duration // each source's clock against the true time
		want   time.Duration   // the offset the client should learn
		ok     bool
	}{
		{"three honest sources", []time.Duration{0, 0, 0}, skew, true},
		{"one liar of three", []time.Duration{0, 2 * time.Hour, 0}, skew, true},
		{"one liar of three, behind", []time.Duration{-50 * time.Minute, 0, 0}, skew, true},
		{"one liar of two", []time.Duration{0, -skew}, 0, true},
		{"one source", []time.Duration{0}, 0, false},
		{"sources two hours ahead", []time.Duration{2 * time.Hour, 2 * time.Hour, 2 * time.Hour}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srcs []peer.AddrInfo
			for _, off := range tc.clocks {
				h := newHost(t)
				view.Serve(h, view.NewSet(func() time.Time { return time.Now().Add(off) }))
				srcs = append(srcs, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
			}
			clock := func() time.Time { return time.Now().Add(-skew) }
			sy := view.NewSyncer(newHost(t), dht.NewCache("", clock), view.SyncConfig{AllowSameSubnet: true, Now: clock})
			if _, err := sy.Sync(context.Background(), srcs); err != nil {
				t.Fatal(err)
			}
			got, ok := sy.ClockOffset()
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v (offset %v)", ok, tc.ok, got)
			}
			if (got - tc.want).Abs() > time.Second {
				t.Fatalf("offset %v, want %v", got, tc.want)
			}
		})
	}
}
