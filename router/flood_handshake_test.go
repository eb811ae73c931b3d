package router_test

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/router"
)

// garbageCreates has each of peers fresh hosts send n CREATEs with random
// handshakes to target (n < 0: until ctx ends), each at most perSecond a
// second (0: as fast as its channel takes them). It returns once the
// peers' channels are open; the result waits for the peers and says how
// many CREATEs were sent.
func garbageCreates(ctx context.Context, tb testing.TB, target peer.AddrInfo, peers, n int, perSecond float64) func() int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for range peers {
		m := attacker(tb)
		ch, err := m.Channel(ctx, target)
		if err != nil {
			tb.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seed [32]byte
			rand.Read(seed[:])
			rnd := mrand.NewChaCha8(seed) // random enough, and cheap for the flooder
			garbage := make([]byte, circuit.PayloadLen)
			pace := pacer(perSecond)
			for i := 0; i != n && pace.Wait(ctx) == nil; i++ {
				c, err := ch.Open(rawHandler{cells: make(chan []byte, 4)})
				if err != nil {
					return
				}
				rnd.Read(garbage)
				err = c.Send(ctx, circuit.CmdCreate, garbage)
				c.Close() // the relay's DESTROY, if any, is not awaited
				if err != nil {
					return
				}
				mu.Lock()
				sent++
				mu.Unlock()
			}
		}()
	}
	return func() int {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return sent
	}
}

// pacer allows perSecond events a second, or any number for 0.
func pacer(perSecond float64) *rate.Limiter {
	if perSecond == 0 {
		return rate.NewLimiter(rate.Inf, 1)
	}
	return rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond/100)))
}

// linkGarbage writes random bytes, a torn cell last, on a raw link stream,
// and opens streams more than a peer may.
func linkGarbage(ctx context.Context, tb testing.TB, target peer.AddrInfo, cells, streams int) {
	h := newHost(tb)
	tb.Cleanup(func() { h.Close() })
	buf := make([]byte, cells*circuit.CellSize+77)
	rand.Read(buf)
	l := dialRawLinkFrom(ctx, tb, h, target)
	if _, err := l.s.Write(buf); err != nil {
		tb.Fatal(err)
	}
	for range streams - 1 {
		l := dialRawLinkFrom(ctx, tb, h, target)
		l.write(0, circuit.CmdPadding, nil) // the relay sees a stream once it is written
	}
}

// Handshake floods with garbage: CREATEs with random handshakes from many
// peers are held to each peer's rate and to the relay's, each one let
// through costs one failed handshake and is counted; random bytes on the
// link protocol are dropped as cells for no circuit and counted; a peer's
// channels beyond its limit are refused. An honest transfer through the
// relay completes meanwhile, and the relay builds honest circuits after.
func TestHandshakeGarbageFlood(t *testing.T) {
	const peers, perPeer = 8, 300 // within each peer's burst, over the relay's
	port, sum := dataServer(t)
	tn := newTestNet(t, 2, func(i int, c *router.Config) {
		c.CreateRateTotal, c.CreateBurstTotal = 200, 1000
	})
	honest := tn.build(t, 0, 1)
	relay := tn.Relays[0].Router
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	wait := garbageCreates(ctx, t, tn.Relays[0].Hop().Peer, peers, perPeer, 0)
	linkGarbage(ctx, t, tn.Relays[0].Hop().Peer, 20000, 3*link.DefaultMaxChannelsPerPeer)
	transfer(t, ctx, honest, port, sum)
	sent := wait()
	allowed := 1000 + 200*time.Since(start).Seconds() // the relay's burst and rate

	waitUntil(t, "every garbage CREATE answered or refused", func() bool {
		st := relay.Stats()
		return st.FailedCreates+st.RefusedCreates >= uint64(sent)
	})
	st := relay.Stats()
	t.Logf("%d garbage CREATEs: %d refused by rate, %d failed handshakes (%.0f allowed); link %+v",
		sent, st.RefusedCreates, st.FailedCreates, allowed, st.Link)
	if float64(st.FailedCreates) > allowed+50 {
		t.Fatalf("relay-wide rate not held: %+v", st)
	}
	if st.Link.RefusedChannels < 2*link.DefaultMaxChannelsPerPeer-1 {
		t.Fatalf("%d channels refused, want the ones over the peer's limit", st.Link.RefusedChannels)
	}
	waitUntil(t, "the link garbage read", func() bool { return relay.Stats().Link.DroppedCells > 19000 })
	if st.Circuits > 1 {
		t.Fatalf("%d circuits left after the flood", st.Circuits)
	}
	waitUntil(t, "the relay-wide rate refilled", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := client.Build(ctx, tn.client, tn.Path(0, 1))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
