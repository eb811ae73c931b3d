package link

import (
	"bytes"
	"context"
	"encoding/hex"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
)

// fakeClock hands out timers that fire only when the test says so, and
// reports each timer armed on armed.
type fakeClock struct {
	armed chan time.Duration

	mu     sync.Mutex
	timers []*fakeTimer
}

type fakeTimer struct {
	c       chan time.Time
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{armed: make(chan time.Duration, 1000)} }

func (f *fakeClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := &fakeTimer{c: make(chan time.Time, 1)}
	f.mu.Lock()
	f.timers = append(f.timers, t)
	f.mu.Unlock()
	f.armed <- d
	return t.c, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// fire fires the newest timer.
func (f *fakeClock) fire() {
	f.mu.Lock()
	t := f.timers[len(f.timers)-1]
	f.mu.Unlock()
	t.c <- time.Time{}
}

// next waits for the padder to arm a timer and returns its duration.
func (f *fakeClock) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-f.armed:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the padder armed no timer")
		return 0
	}
}

// padPair is pair with padding clocks and configs of the test's choice.
func padPair(t *testing.T, pa, pb PaddingConfig) (*Manager, *Manager, chan *recorder) {
	a, b := newHost(t), newHost(t)
	accepted := make(chan *recorder, 100)
	mb := NewManager(b, Config{MaxQueue: 64, Padding: pb, OnCreate: func(ch *Channel, id uint32) Handler {
		r := newRecorder()
		accepted <- r
		return r
	}})
	ma := NewManager(a, Config{MaxQueue: 64, Padding: pa})
	mb.Start()
	ma.Start()
	t.Cleanup(func() { ma.Close(); mb.Close() })
	return ma, mb, accepted
}

// eventually polls cond until it holds, failing after a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// An idle channel pads at intervals within [low, high]; the peer drops
// the padding at the link layer: no circuit receives it, and neither the
// link window nor the peer's LINK_ACK count includes it.
func TestIdleChannelPads(t *testing.T) {
	ca, cb := newFakeClock(), newFakeClock()
	ma, mb, accepted := padPair(t, PaddingConfig{Clock: ca}, PaddingConfig{Clock: cb})
	ch := dialB(t, ma, mb)
	ctx := context.Background()
	c, err := ch.Open(newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	c.Send(ctx, circuit.CmdCreate, nil)
	r := <-accepted
	<-r.got

	base := settle(t, ca, ma)
	const rounds = 20
	for i := range rounds {
		d := ca.next(t)
		if d < DefaultPaddingLow || d > DefaultPaddingHigh {
			t.Fatalf("padding timeout %v outside [%v, %v]", d, DefaultPaddingLow, DefaultPaddingHigh)
		}
		ca.fire()
		eventually(t, "padding", func() bool { return mb.Stats().PaddingReceived == base+uint64(i+1) })
	}
	if got := ma.Stats().PaddingSent; got != base+rounds {
		t.Fatalf("%d padding cells sent, want %d", got, base+rounds)
	}
	select {
	case cell := <-r.got:
		t.Fatalf("the circuit received a cell with command %d", cell[4])
	default:
	}
	if s := mb.Stats(); s.DroppedCells != 0 {
		t.Fatalf("padding counted as %d dropped cells", s.DroppedCells)
	}
	ch.winMu.Lock()
	written := ch.win.written
	ch.winMu.Unlock()
	if written != 1 {
		t.Fatalf("the window counts %d cells written, want 1 (the CREATE)", written)
	}
}

// Traffic on the channel holds padding back: a timeout that ends after a
// cell went by sends nothing and draws again.
func TestBusyChannelDoesNotPad(t *testing.T) {
	ca, cb := newFakeClock(), newFakeClock()
	ma, mb, accepted := padPair(t, PaddingConfig{Clock: ca}, PaddingConfig{Clock: cb})
	ch := dialB(t, ma, mb)
	ctx := context.Background()
	c, _ := ch.Open(newRecorder())
	c.Send(ctx, circuit.CmdCreate, nil)
	r := <-accepted
	<-r.got
	base := settle(t, ca, ma)
	ca.next(t)
	c.Send(ctx, circuit.CmdRelay, nil)
	<-r.got
	ca.fire()
	ca.next(t) // the padder drew again
	if ma.Stats().PaddingSent != base {
		t.Fatal("padding sent on a channel that was not idle")
	}
	ca.fire() // now idle for a whole timeout
	eventually(t, "padding", func() bool { return mb.Stats().PaddingReceived == base+1 })
}

// settle fires the padder's first timeout, which it may have armed
// before or after the test's first cells, and returns the padding sent
// once it armed the next; the next call of next returns that one.
func settle(t *testing.T, c *fakeClock, m *Manager) uint64 {
	t.Helper()
	c.next(t)
	c.fire()
	d := c.next(t)
	c.armed <- d // for the caller
	return m.Stats().PaddingSent
}

// A peer in reduced mode makes the other side pad at the reduced
// intervals; a peer that turned padding off gets none.
func TestPaddingNegotiation(t *testing.T) {
	for _, tc := range []struct {
		mode      PaddingMode
		low, high time.Duration
	}{
		{PaddingReduced, ReducedPaddingLow, ReducedPaddingHigh},
		{PaddingOff, 0, 0},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			ca, cb := newFakeClock(), newFakeClock()
			ma, mb, _ := padPair(t, PaddingConfig{Mode: tc.mode, Clock: ca}, PaddingConfig{Clock: cb})
			dialB(t, ma, mb)
			var bch *Channel
			eventually(t, "the request", func() bool {
				mb.mu.Lock()
				defer mb.mu.Unlock()
				for c := range mb.all {
					bch = c
				}
				return bch != nil && bch.padInterval() == padInterval{tc.low, tc.high}
			})
			if tc.mode == PaddingOff {
				select {
				case d := <-ca.armed:
					t.Fatalf("a node with padding off armed a %v timeout", d)
				default:
				}
				return
			}
			// Every timeout b draws from now on is a reduced one.
			for range 10 {
				d := cb.next(t)
				if d < tc.low {
					continue // drawn before the request: b drew again on it
				}
				if d < tc.low || d > tc.high {
					t.Fatalf("timeout %v outside the reduced [%v, %v]", d, tc.low, tc.high)
				}
				cb.fire()
			}
		})
	}
}

// A peer cannot ask for more padding than the node sends by itself.
func TestPaddingRequestOnlyLowers(t *testing.T) {
	own := padInterval{DefaultPaddingLow, DefaultPaddingHigh}
	for _, tc := range []struct {
		name string
		req  *PaddingNegotiate
		want padInterval
	}{
		{"none", nil, own},
		{"stop", &PaddingNegotiate{Command: PaddingStop}, padInterval{}},
		{"faster", &PaddingNegotiate{Command: PaddingStart, Low: 1, High: 1}, own},
		{"slower", &PaddingNegotiate{Command: PaddingStart, Low: 9000, High: 14000}, padInterval{ReducedPaddingLow, ReducedPaddingHigh}},
		{"mixed", &PaddingNegotiate{Command: PaddingStart, Low: 10, High: 20000}, padInterval{DefaultPaddingLow, 20 * time.Second}},
	} {
		if got := effective(own, tc.req); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := effective(padInterval{}, &PaddingNegotiate{Command: PaddingStart, Low: 1, High: 2}); !got.off() {
		t.Errorf("a node with padding off pads on request: %v", got)
	}
}

// A malformed PADDING_NEGOTIATE closes the channel.
func TestBadPaddingNegotiateClosesChannel(t *testing.T) {
	ma, mb, _ := padPair(t, PaddingConfig{Mode: PaddingOff}, PaddingConfig{Mode: PaddingOff})
	ch := dialB(t, ma, mb)
	bad := PaddingNegotiate{Command: PaddingStart, Low: 5, High: 4}.MarshalPayload()
	if err := ch.SendRaw(context.Background(), 0, CmdPaddingNegotiate, bad); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the peer kept a channel that sent a bad PADDING_NEGOTIATE")
	}
}

func TestParsePaddingNegotiate(t *testing.T) {
	good := []PaddingNegotiate{
		{Command: PaddingStop},
		{Command: PaddingStart, Low: 1, High: 1},
		{Command: PaddingStart, Low: 9000, High: 14000},
	}
	for _, n := range good {
		got, err := ParsePaddingNegotiate(n.MarshalPayload())
		if err != nil || got != n {
			t.Errorf("%+v: %+v, %v", n, got, err)
		}
	}
	// The vector of specs/03-link.md: START reduced.
	reduced, _ := PaddingConfig{Mode: PaddingReduced}.request()
	if got := hex.EncodeToString(reduced.MarshalPayload()[:8]); got != "0002232836b00000" {
		t.Errorf("reduced START encodes as %s…", got)
	}
	mut := func(f func(p []byte) []byte) []byte {
		return f(PaddingNegotiate{Command: PaddingStart, Low: 1, High: 2}.MarshalPayload())
	}
	bad := map[string][]byte{
		"short":      mut(func(p []byte) []byte { return p[:10] }),
		"long":       mut(func(p []byte) []byte { return append(p, 0) }),
		"version":    mut(func(p []byte) []byte { p[0] = 1; return p }),
		"command":    mut(func(p []byte) []byte { p[1] = 3; return p }),
		"low zero":   mut(func(p []byte) []byte { p[3] = 0; return p }),
		"low > high": mut(func(p []byte) []byte { p[3] = 9; return p }),
		"stop times": mut(func(p []byte) []byte { p[1] = PaddingStop; return p }),
		"trailer":    mut(func(p []byte) []byte { p[100] = 1; return p }),
	}
	for name, p := range bad {
		if _, err := ParsePaddingNegotiate(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParsePaddingNegotiate(f *testing.F) {
	f.Add(PaddingNegotiate{Command: PaddingStop}.MarshalPayload())
	f.Add(PaddingNegotiate{Command: PaddingStart, Low: 9000, High: 14000}.MarshalPayload())
	f.Add([]byte{0, 2, 0, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		n, err := ParsePaddingNegotiate(p)
		if err != nil {
			return
		}
		if !bytes.Equal(n.MarshalPayload(), p) {
			t.Fatalf("%+v does not round-trip", n)
		}
	})
}

// The padding timeout is the larger of two uniform draws, so its mean
// is low + 2(high − low)/3.
func TestPaddingDrawDistribution(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	iv := padInterval{DefaultPaddingLow, DefaultPaddingHigh}
	const n = 100000
	var sum time.Duration
	for range n {
		d := iv.draw(r)
		if d < iv.low || d > iv.high {
			t.Fatalf("draw %v outside [%v, %v]", d, iv.low, iv.high)
		}
		sum += d
	}
	mean, want := sum/n, iv.low+2*(iv.high-iv.low)/3
	if diff := mean - want; diff > 50*time.Millisecond || diff < -50*time.Millisecond {
		t.Fatalf("mean timeout %v, want about %v", mean, want)
	}
}

// BenchmarkIdlePaddingPerHour reports the padding one side of a fully
// idle channel sends in an hour, simulated from the padder's timeout
// distribution (not measured on a wire): cells and bytes of cells.
func BenchmarkIdlePaddingPerHour(b *testing.B) {
	for _, m := range []PaddingMode{PaddingOn, PaddingReduced} {
		b.Run(m.String(), func(b *testing.B) {
			iv := PaddingConfig{Mode: m}.own()
			r := rand.New(rand.NewPCG(uint64(m), 7))
			var cells int
			for range b.N {
				for t := iv.draw(r); t < time.Hour; t += iv.draw(r) {
					cells++
				}
			}
			per := float64(cells) / float64(b.N)
			b.ReportMetric(per, "cells/h")
			b.ReportMetric(per*circuit.CellSize, "B/h")
		})
	}
}
