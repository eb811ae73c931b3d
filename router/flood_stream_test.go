package router_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/flow"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/router"
)

// silentServer accepts TCP connections and never reads nor writes.
func silentServer(tb testing.TB) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// attacker is a client of its own (own host, own channel to the relays).
func attacker(tb testing.TB) *link.Manager {
	h := newHost(tb)
	m := link.NewManager(h, link.Config{})
	m.Start()
	tb.Cleanup(func() { m.Close(); h.Close() })
	return m
}

func buildOn(tb testing.TB, m *link.Manager, path []client.Hop) *client.Circuit {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Build(ctx, m, path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// halfOpen opens streams on c to 127.0.0.1:port until the exit refuses
// one or max are open, concurrently (workers at a time), and returns how
// many opened and the first refusal's reason.
func halfOpen(ctx context.Context, c *client.Circuit, port uint16, max, workers int) (int, circuit.EndReason) {
	var mu sync.Mutex
	opened, refused := 0, circuit.EndReason(0)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				stop := refused != 0 || opened >= max || ctx.Err() != nil
				mu.Unlock()
				if stop {
					return
				}
				_, err := c.Dial(ctx, "127.0.0.1", port)
				mu.Lock()
				if err != nil {
					if refused == 0 {
						refused = endReason(err)
					}
				} else {
					opened++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return opened, refused
}

// Half-open streams: streams to a destination that accepts and never
// speaks are held to MaxStreams per circuit and MaxExitStreams per relay
// (the next BEGIN is refused with "resource limit"); connects that never
// complete are held by the same limits and end after the connect timeout;
// streams whose client never reads stop at the stream's XOFF. An honest
// circuit through the same exit moves its data meanwhile.
func TestHalfOpenStreamFlood(t *testing.T) {
	const perRelay = 700
	port, sum := dataServer(t)
	silent := silentServer(t)
	unanswered := silentServer(t) // its port is never dialled: see Dial below
	tn := newTestNet(t, 2, func(i int, c *router.Config) {
		if i == 1 {
			c.MaxExitStreams = perRelay
			c.ConnectTimeout = 15 * time.Second // long enough for all the pending connects to overlap
			var d net.Dialer
			c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if addr == "127.0.0.1:"+strconv.Itoa(int(unanswered)) {
					<-ctx.Done() // a destination that drops SYNs
					return nil, ctx.Err()
				}
				return d.DialContext(ctx, network, addr)
			}
		}
	})
	exit := tn.Relays[1].Router
	honest := tn.build(t, 0, 1)
	bad := attacker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("silent", func(t *testing.T) {
		hs, err := honest.Dial(ctx, "127.0.0.1", port) // open before the flood
		if err != nil {
			t.Fatal(err)
		}
		defer hs.Close()
		a := buildOn(t, bad, tn.Path(0, 1))
		n, why := halfOpen(ctx, a, silent, 1000, 16)
		if n != router.DefaultMaxStreams || why != circuit.EndResourceLimit {
			t.Fatalf("one circuit opened %d streams, then %v; want %d, then resource limit", n, why, router.DefaultMaxStreams)
		}
		b := buildOn(t, bad, tn.Path(0, 1))
		m, why := halfOpen(ctx, b, silent, 1000, 16)
		if 1+n+m != perRelay || why != circuit.EndResourceLimit {
			t.Fatalf("the relay took %d streams, then %v; want %d, then resource limit", 1+n+m, why, perRelay)
		}
		if st := exit.Stats(); st.Streams != perRelay || st.RefusedStreams < 2 {
			t.Fatalf("exit stats %+v", st)
		}
		// The honest stream opened before moves its data; a new one is
		// refused while the relay is full, and opens once the flood ends.
		if got, err := get(hs, 8<<20); err != nil || got != sum(8<<20) {
			t.Fatalf("honest transfer during the flood: %v", err)
		}
		if _, err := honest.Dial(ctx, "127.0.0.1", port); endReason(err) != circuit.EndResourceLimit {
			t.Fatalf("new honest stream on a full relay: %v", err)
		}
		a.Close()
		b.Close()
		waitUntil(t, "the flood's streams closed", func() bool { return exit.Stats().Streams <= 1 })
		transfer(t, ctx, honest, port, sum)
	})
	t.Run("unanswered", func(t *testing.T) {
		a := buildOn(t, bad, tn.Path(0, 1))
		var wg sync.WaitGroup
		ends := make(chan circuit.EndReason, 600)
		for range 600 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := a.Dial(ctx, "127.0.0.1", unanswered)
				ends <- endReason(err)
			}()
		}
		wg.Wait()
		close(ends)
		count := map[circuit.EndReason]int{}
		for r := range ends {
			count[r]++
		}
		if count[circuit.EndTimeout] > router.DefaultMaxStreams || count[circuit.EndResourceLimit] < 600-router.DefaultMaxStreams {
			t.Fatalf("ends %v: at most %d pending connects per circuit", count, router.DefaultMaxStreams)
		}
		t.Logf("600 connects that never complete: %v", count)
	})
	t.Run("unread", func(t *testing.T) {
		a := buildOn(t, bad, tn.Path(0, 1))
		for range 20 {
			s, err := a.Dial(ctx, "127.0.0.1", port)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write([]byte("GET /bytes/1000000000 HTTP/1.0\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
		}
		fwd := func() uint64 { return tn.Relays[0].Router.Stats().Forwarded }
		waitUntil(t, "every unread stream stopped", func() bool {
			before := fwd()
			time.Sleep(500 * time.Millisecond)
			return fwd() == before
		})
		// Each stream stops at its XOFF (1 MiB) plus what is in flight; a
		// client would cut one that passed flow.HardLimit.
		cells := fwd()
		if cells > 20*flow.HardLimit/circuit.MaxRelayBody+flow.MaxCwnd {
			t.Fatalf("%d cells forwarded to streams nobody reads", cells)
		}
		t.Logf("20 unread streams of a gigabyte each stopped after %d cells", cells)
		transfer(t, ctx, honest, port, sum)
	})
}

// transfer moves 8 MiB through c and checks it.
func transfer(t *testing.T, ctx context.Context, c *client.Circuit, port uint16, sum func(int) [32]byte) {
	t.Helper()
	s, err := c.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := get(s, 8<<20); err != nil || got != sum(8<<20) {
		t.Fatalf("honest transfer: %v", err)
	}
}
