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
		tn.dir.Set(h.ID(), h.Addrs())
		var onion [32]byte
		rand.Read(onion[:])
		out = append(out, client.Hop{Peer: peer.AddrInfo{ID: h.ID()}, OnionKey: onion})
	}
	return out
}

// BenchmarkIntroFlood: an attacker floods a service with introductions
// that name rendezvous points that never answer (8 of them), at the rate
// its concurrent intro circuits reach, without proof of work. The service
// runs in a process of its own. Once the flood holds every one of the
// service's rendezvous slots, an honest client connects again and again
// (a new rendezvous each time, 40 s at most). Reported: the honest
// success rate and median time to first byte, the flood's rate, the
// effort the service asks at the end, and the service process's CPU and
// peak resident memory. Two services: without the defence, and with the
// proof-of-work defence as it runs by itself — asking no effort until
// introductions are lost, then raising it (looking every 5 s here
// instead of every 2 min, so that a short run sees it act).
//
//	go test -run XXX -bench IntroFlood -benchtime 1x ./hidden
func BenchmarkIntroFlood(b *testing.B) {
	for _, defence := range []bool{false, true} {
		name := "defence=off"
		if defence {
			name = "defence=pow"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				floodOnce(b, defence)
			}
		})
	}
}

// floodAdjustEvery is how often the flooded service looks at its losses.
const floodAdjustEvery = 5 * time.Second

func floodOnce(b *testing.B, defence bool) {
	const attackers, honestTries = 12, 6
	tn := newTestNet(b, 8)
	holes := blackHoles(b, tn, 8)
	svc := startServiceProcess(b, tn, defence, 0, floodAdjustEvery)
	eventually(b, 60*time.Second, "every replica stored", func() bool { return svc.status(b).Status.Stored == 6 })

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
				if st, err := ac.IntroduceNoWork(fctx, svc.address, i, holes[i%len(holes)]); err == nil && st == 0 {
					acked.Add(1)
				}
			}
		}()
	}
	// Let the flood fill the service's slots and queues first.
	eventually(b, 60*time.Second, "the flood to hold every slot", func() bool { return svc.status(b).Status.Intro.Running >= 16 })
	start, before := time.Now(), svc.status(b)

	hn, _ := tn.endpoint()
	c, err := hidden.NewConnector(hn)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var ttfb []time.Duration
	var failures []string
	ok := 0
	for range honestTries {
		c.DropSession(svc.address)
		t0 := time.Now()
		dctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		conn, err := c.Dial(dctx, "tcp", svc.address+":80")
		if err == nil {
			conn.Write([]byte("GET\n"))
			var one [1]byte
			if _, err = io.ReadFull(conn, one[:]); err == nil {
				ok++
				ttfb = append(ttfb, time.Since(t0))
			}
			conn.Close()
		}
		if err != nil {
			failures = append(failures, fmt.Sprintf("%v after %v", err, time.Since(t0).Round(time.Millisecond)))
		}
		cancel()
	}
	elapsed := time.Since(start)
	after := svc.status(b)
	stop()
	wg.Wait()
	b.ReportMetric(float64(ok)/honestTries, "honest-success")
	if len(ttfb) > 0 {
		slices.Sort(ttfb)
		b.ReportMetric(float64(ttfb[len(ttfb)/2].Milliseconds()), "honest-ttfb-ms")
	}
	b.ReportMetric(float64(acked.Load())/elapsed.Seconds(), "flood-intros/s")
	b.ReportMetric(float64(after.Status.PoWEffort), "effort-asked")
	b.ReportMetric((after.CPUSeconds-before.CPUSeconds)/elapsed.Seconds(), "service-cpu-s/s")
	b.ReportMetric(float64(after.PeakRSSKiB)/1024, "service-peak-rss-MiB")
	for _, f := range failures {
		b.Logf("honest connect failed: %s", f)
	}
	b.Logf("defence %v: honest %d/%d, ttfb %v; flood %d sent, %d acked in %v; service asks effort %d, %+v",
		defence, ok, honestTries, ttfb, sent.Load(), acked.Load(), elapsed.Round(time.Second), after.Status.PoWEffort, after.Status.Intro)
}
