package router_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/router"
)

// floodCells builds n circuits through path on one channel of m and sends
// DROP cells to their last hop on each until ctx ends, perSecond a second
// per circuit (0: as fast as the channel takes them). DROP cells are
// outside flow control, so nothing but the relays' queues holds them
// back. The result waits for the flood's end and says how many cells
// were sent.
func floodCells(ctx context.Context, tb testing.TB, m *link.Manager, path []client.Hop, n int, perSecond float64) func() uint64 {
	var sent atomic.Uint64
	var wg sync.WaitGroup
	for range n {
		c := buildOn(tb, m, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			drop := circuit.RelayCell{Command: circuit.RelayDrop}
			pace := pacer(perSecond)
			for pace.Wait(ctx) == nil && c.SendTo(ctx, len(path)-1, drop) == nil {
				sent.Add(1)
			}
		}()
	}
	return func() uint64 { wg.Wait(); return sent.Load() }
}

// Cell floods: a peer sending cells as fast as it can on one circuit, and
// on many circuits of one channel, is bounded by each circuit's queue and
// the relay's budget (a circuit that overruns its queue is destroyed, the
// relay's memory does not grow), and another channel's circuit through the
// same relays moves its data meanwhile.
func TestCellFlood(t *testing.T) {
	const budget = 16384 // four full queues (the default queue holds an honest window)
	port, sum := dataServer(t)
	tn := newTestNet(t, 2, func(i int, c *router.Config) {
		c.Link = link.Config{MaxQueuedCells: budget}
	})
	honest := tn.build(t, 0, 1)
	for _, circuits := range []int{1, 16} {
		ctx, cancel := context.WithCancel(context.Background())
		peaks := []*peakSampler{}
		for _, r := range tn.Relays {
			peaks = append(peaks, samplePeak(func() int64 { return r.Router.Stats().Link.QueuedCells }))
		}
		sent := floodCells(ctx, t, attacker(t), tn.Path(0, 1), circuits, 0)
		tctx, tcancel := context.WithTimeout(context.Background(), time.Minute)
		start := time.Now()
		transfer(t, tctx, honest, port, sum)
		took := time.Since(start)
		tcancel()
		cancel()
		n := sent()
		for i, p := range peaks {
			peak := p.Stop()
			st := tn.Relays[i].Router.Stats().Link
			t.Logf("%d flooding circuits, %d DROP cells in %v: relay %d peak %d cells queued, %d circuits overran their queue, %d shed",
				circuits, n, took.Round(time.Millisecond), i, peak, st.Overflows, st.Shed)
			if peak > budget+64 {
				t.Fatalf("relay %d queued %d cells", i, peak)
			}
		}
		if honest.Err() != nil {
			t.Fatalf("honest circuit closed: %v", honest.Err())
		}
	}
}
