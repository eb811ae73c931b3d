package hidden_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/hidden"
)

// blackHole takes circuits and never answers: a rendezvous point that
// holds a service's circuit until the service gives up.
type blackHole struct{}

func (blackHole) HandleCell(_ *link.Circ, cell []byte) { link.Release(cell) }
func (blackHole) CircuitClosed(_ *link.Circ, _ error)  {}

// blackHoles starts n nodes that relays can reach and that never answer
// a CREATE, and returns them as rendezvous points.
func blackHoles(tb testing.TB, tn *testNet, n int) []client.Hop {
	var out []client.Hop
	for range n {
		h := newHost(tb)
		lm := link.NewManager(h, link.Config{OnCreate: func(*link.Channel, uint32) link.Handler { return blackHole{} }})
		lm.Start()
		tb.Cleanup(func() { lm.Close() })
		tn.dir.mu.Lock()
		tn.dir.addrs[h.ID()] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
		tn.dir.mu.Unlock()
		var onion [32]byte
		rand.Read(onion[:])
		out = append(out, client.Hop{Peer: peer.AddrInfo{ID: h.ID()}, OnionKey: onion})
	}
	return out
}

// BenchmarkIntroFlood: an attacker floods a service with introductions
// that name rendezvous points that never answer (8 of them), at the rate
// its concurrent intro circuits reach, without proof of work. Meanwhile
// an honest client connects again and again (a warm descriptor, a new
// rendezvous each time, 40 s at most). Reported: the honest success rate,
// its median time to first byte, and the flood's rate, with the service
// asking no proof of work and asking an effort of 1000 (the defence
// raised).
//
//	go test -run XXX -bench IntroFlood -benchtime 1x ./hidden
func BenchmarkIntroFlood(b *testing.B) {
	for _, effort := range []uint32{0, 1000} {
		b.Run(fmt.Sprintf("effort=%d", effort), func(b *testing.B) {
			for b.Loop() {
				floodOnce(b, effort)
			}
		})
	}
}

func floodOnce(b *testing.B, effort uint32) {
	const attackers, honestTries = 12, 6
	tn := newTestNet(b, 8)
	holes := blackHoles(b, tn, 8)
	n, _ := tn.endpoint()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Config: n, Key: newKey(b), PoW: effort > 0, PoWMinEffort: effort})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go serveFixed(l)
	eventually(b, 60*time.Second, "every replica stored", func() bool { return l.Status().Stored == 6 })

	fctx, stop := context.WithCancel(context.Background())
	var sent, acked atomic.Int64
	var wg sync.WaitGroup
	for a := range attackers {
		an, _ := tn.endpoint()
		ac, err := hidden.NewConnector(an)
		if err != nil {
			b.Fatal(err)
		}
		defer ac.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := a; fctx.Err() == nil; i += attackers {
				sent.Add(1)
				if st, err := ac.IntroduceNoWork(fctx, l.Address(), i, holes[i%len(holes)]); err == nil && st == 0 {
					acked.Add(1)
				}
			}
		}()
	}
	// Let the flood fill the service's slots and queues first.
	eventually(b, 60*time.Second, "the flood to hold every slot", func() bool { return l.Status().Intro.Running >= 16 })
	start := time.Now()

	hn, _ := tn.endpoint()
	c, err := hidden.NewConnector(hn)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var ttfb []time.Duration
	ok := 0
	for range honestTries {
		c.DropSession(l.Address())
		t0 := time.Now()
		dctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		conn, err := c.Dial(dctx, "tcp", l.Address()+":80")
		if err == nil {
			conn.Write([]byte("GET\n"))
			var one [1]byte
			if _, err = io.ReadFull(conn, one[:]); err == nil {
				ok++
				ttfb = append(ttfb, time.Since(t0))
			}
			conn.Close()
		}
		cancel()
	}
	elapsed := time.Since(start)
	stop()
	wg.Wait()
	s := l.Status().Intro
	b.ReportMetric(float64(ok)/honestTries, "honest-success")
	if len(ttfb) > 0 {
		slices.Sort(ttfb)
		b.ReportMetric(float64(ttfb[len(ttfb)/2].Milliseconds()), "honest-ttfb-ms")
	}
	b.ReportMetric(float64(acked.Load())/elapsed.Seconds(), "flood-intros/s")
	b.Logf("effort %d: honest %d/%d, ttfb %v; flood %d sent, %d acked in %v; service %+v",
		effort, ok, honestTries, ttfb, sent.Load(), acked.Load(), elapsed.Round(time.Second), s)
}
