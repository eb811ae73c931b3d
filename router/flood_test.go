package router_test

import (
	"context"
	"crypto/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/router"
)

// floodCreates opens a channel to the first relay of tn from a host of its
// own and sends garbage CREATEs as fast as the channel takes them until
// ctx ends. It returns how many it sent.
func floodCreates(ctx context.Context, t testing.TB, tn *testNet) func() int {
	h := newHost(t)
	m := link.NewManager(h, link.Config{})
	m.Start()
	t.Cleanup(func() { m.Close(); h.Close() })
	ch, err := m.Channel(ctx, tn.Relays[0].Hop().Peer)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sent := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		garbage := make([]byte, circuit.PayloadLen)
		for ctx.Err() == nil {
			c, err := ch.Open(rawHandler{cells: make(chan []byte, 4)})
			if err != nil {
				return
			}
			rand.Read(garbage[:64])
			if c.Send(ctx, circuit.CmdCreate, garbage) != nil {
				return
			}
			c.Close()
			mu.Lock()
			sent++
			mu.Unlock()
		}
	}()
	return func() int { <-done; mu.Lock(); defer mu.Unlock(); return sent }
}

// A peer flooding a relay with garbage CREATEs is held to its rate; an
// honest transfer through the same relay completes byte for byte, and no
// garbage circuit survives.
func TestCreateFlood(t *testing.T) {
	port, sum := dataServer(t)
	tn := newTestNet(t, 3, nil)
	c := tn.build(t, 0, 1, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	wait := floodCreates(ctx, t, tn)

	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	s, err := c.Dial(sctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const size = 8 << 20
	got, err := get(s, size)
	if err != nil || got != sum(size) {
		t.Fatalf("honest transfer during the flood: %v", err)
	}
	sent := wait()
	st := tn.Relays[0].Router.Stats()
	t.Logf("flood: %d garbage CREATEs sent, %d refused by rate", sent, st.RefusedCreates)
	if sent > 2*router.DefaultCreateBurst && st.RefusedCreates == 0 {
		t.Fatalf("%d CREATEs from one peer and none refused", sent)
	}
	if st.Circuits > 1+1 { // the honest circuit (and at most one in flight)
		t.Fatalf("relay holds %d circuits after the flood", st.Circuits)
	}
}

// BenchmarkCreateFlood measures an honest 3-hop transfer through a relay
// while another peer floods it with garbage CREATEs, against the same
// transfer without the flood, in one run:
//
//	go test -run XXX -bench CreateFlood -benchtime 3x ./router
func BenchmarkCreateFlood(b *testing.B) {
	port, _ := dataServer(b)
	for _, flood := range []bool{false, true} {
		name := "quiet"
		if flood {
			name = "flooded"
		}
		b.Run(name, func(b *testing.B) {
			tn := newTestNet(b, 3, nil)
			c := tn.build(b, 0, 1, 2)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if flood {
				floodCreates(ctx, b, tn)
			}
			b.SetBytes(benchSize)
			for b.Loop() {
				s, err := c.Dial(context.Background(), "127.0.0.1", port)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := get(s, benchSize); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
			b.ReportMetric(float64(tn.Relays[0].Router.Stats().RefusedCreates), "refused-creates")
			b.ReportMetric(float64(peakRSSKiB())/1024, "peak-RSS-MiB")
		})
	}
}

// peakRSSKiB is the process's peak resident set size (VmHWM).
func peakRSSKiB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}
