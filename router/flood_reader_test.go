package router_test

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/router"
)

// slowReaders builds n circuits through path on a channel of their own to
// path[0], each asking the exit for a gigabyte, and then never reads the
// channel again nor acknowledges a cell: the exit sends a congestion
// window per circuit, which piles up at the first hop once the channel's
// transport buffers are full. The circuits are built and connected before
// any asks, so nothing asked is ever read.
func slowReaders(ctx context.Context, tb testing.TB, path []client.Hop, port uint16, n int) {
	l := dialRawLink(ctx, tb, path[0].Peer)
	byID := map[uint32]*rawCircuit{}
	var circs []*rawCircuit
	for range n {
		c, err := l.build(path)
		if err != nil {
			tb.Fatalf("slow reader build: %v", err)
		}
		byID[c.id] = c
		circs = append(circs, c)
	}
	for _, c := range circs {
		if err := c.begin(port); err != nil {
			tb.Fatal(err)
		}
	}
	for connected := 0; connected < n; {
		cell, err := l.readAny()
		if err != nil {
			tb.Fatalf("slow readers: %v", err)
		}
		c := byID[binary.BigEndian.Uint32(cell)]
		if c == nil || circuit.Command(cell[4]) != circuit.CmdRelay {
			tb.Fatalf("slow readers: unexpected %v", circuit.Command(cell[4]))
		}
		if _, rc, err := c.cc.Open(cell[circuit.CellHeaderLen:]); err != nil || rc.Command != circuit.RelayConnected {
			tb.Fatalf("slow readers: got %v, %v", rc.Command, err)
		}
		connected++
	}
	for _, c := range circs {
		if err := c.request(1 << 30); err != nil {
			tb.Fatal(err)
		}
	}
}

// peakSampler records the largest value f returns until stopped.
type peakSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done sync.WaitGroup
}

func samplePeak(f func() int64) *peakSampler {
	p := &peakSampler{stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := f(); v > p.peak.Load() {
				p.peak.Store(v)
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) Stop() int64 { close(p.stop); p.done.Wait(); return p.peak.Load() }

// Slow readers: a client that asks for bulk data on many circuits and
// never reads its channel nor sends a SENDME makes its first hop queue
// at most a congestion window per circuit; the queues of all circuits
// stay within the relay's budget (the longest are shed), the channel is
// closed once the peer has read nothing for the write timeout, and an
// honest circuit through the same relays moves its data meanwhile.
func TestSlowReaderFlood(t *testing.T) {
	// Each reader gets a window of 250 cells (320 KB); the transport
	// buffers of the reader's connection take the first 30 MB or so,
	// then the relay must queue. Readers are added until it sheds.
	const budget, maxReaders = 4000, 400
	port, sum := dataServer(t)
	tn := newTestNet(t, 2, func(i int, c *router.Config) {
		if i == 0 {
			c.Link = link.Config{MaxQueuedCells: budget, WriteTimeout: 10 * time.Second}
		} else {
			c.CreateRate = -1 // the first relay forwards every reader's CREATE
		}
	})
	victim := tn.Relays[0].Router
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("relay stats: %+v, exit stats: %+v", victim.Stats(), tn.Relays[1].Router.Stats())
		}
	})
	honest := tn.build(t, 0, 1)
	queued := samplePeak(func() int64 { return victim.Stats().Link.QueuedCells })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	readers, channels := 0, 0
	for ; readers < maxReaders && !shedWithin(victim, 5*time.Second); readers += 50 {
		slowReaders(ctx, t, tn.Path(0, 1), port, 50)
		channels++
	}
	if victim.Stats().Link.Shed == 0 {
		t.Fatalf("%d slow readers and nothing shed", readers)
	}

	s, err := honest.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := get(s, 8<<20); err != nil || got != sum(8<<20) {
		t.Fatalf("honest transfer during the flood: %v", err)
	}
	waitUntil(t, "the stalled channels closed", func() bool { return victim.Stats().Link.StalledChannels == uint64(channels) })
	waitUntil(t, "the slow circuits gone", func() bool { return victim.Stats().Circuits == 1 })
	peak := queued.Stop()
	st := victim.Stats()
	t.Logf("%d readers; peak %d cells queued (budget %d); stats %+v", readers, peak, budget, st.Link)
	if peak > budget+64 {
		t.Fatalf("%d cells queued, budget %d", peak, budget)
	}
	if st.Link.QueuedCells > 64 {
		t.Fatalf("%d cells still queued after the flood", st.Link.QueuedCells)
	}
}

// shedWithin reports whether r's link budget sheds a circuit within d.
func shedWithin(r *router.Router, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if r.Stats().Link.Shed > 0 {
			return true
		}
	}
	return false
}

// waitUntil polls cond, a state the relay under test reaches by itself.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
