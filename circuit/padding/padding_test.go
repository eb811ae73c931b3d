package padding

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var sample = Program{Cells: 10, StopOn: StopOnForward, Delays: []Bin{{Edge: 5 * time.Millisecond, Weight: 3}, {Edge: 100 * time.Millisecond, Weight: 1}}}

func TestNegotiateRoundTrip(t *testing.T) {
	for _, n := range []Negotiate{
		{Command: Start, Machine: 7, Slot: 1, Program: sample},
		{Command: Start, Program: Program{Cells: MaxCells, StopOn: StopOnForward | StopOnBackward, Schedule: Offsets, Delays: []Bin{{Edge: MaxDelay, Weight: 255}}}},
		{Command: Stop, Machine: 3, Slot: 0},
	} {
		b, err := n.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseNegotiate(b)
		if err != nil {
			t.Fatalf("%+v: %v", n, err)
		}
		again, _ := got.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("%+v does not round-trip", n)
		}
	}
}

func TestParseNegotiateRejects(t *testing.T) {
	good, _ := Negotiate{Command: Start, Machine: 1, Slot: 0, Program: sample}.MarshalBinary()
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	bad := map[string][]byte{
		"empty":          nil,
		"version":        mut(func(b []byte) []byte { b[0] = 1; return b }),
		"command":        mut(func(b []byte) []byte { b[1] = 9; return b }),
		"slot":           mut(func(b []byte) []byte { b[3] = MaxMachines; return b }),
		"zero cells":     mut(func(b []byte) []byte { b[4], b[5] = 0, 0; return b }),
		"too many cells": mut(func(b []byte) []byte { b[4], b[5] = 0xff, 0xff; return b }),
		"stop events":    mut(func(b []byte) []byte { b[6] = 0x80; return b }),
		"schedule":       mut(func(b []byte) []byte { b[7] = 2; return b }),
		"no bins":        mut(func(b []byte) []byte { b[8] = 0; return b[:9] }),
		"truncated":      mut(func(b []byte) []byte { return b[:len(b)-1] }),
		"trailing":       mut(func(b []byte) []byte { return append(b, 0) }),
		"bins unsorted":  mut(func(b []byte) []byte { b[9], b[10] = 0, 200; return b }),
		"zero weights":   mut(func(b []byte) []byte { b[11], b[14] = 0, 0; return b }),
		"edge too long":  mut(func(b []byte) []byte { b[12], b[13] = 0xff, 0xff; return b }),
		"too many bins": func() []byte {
			b := append([]byte(nil), good[:9]...)
			b[8] = MaxBins + 1
			for i := range MaxBins + 1 {
				b = append(b, 0, byte(i+1), 1)
			}
			return b
		}(),
		"stop with body": {0, Stop, 0, 0, 1},
	}
	for name, b := range bad {
		if _, err := ParseNegotiate(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseNegotiated(t *testing.T) {
	n := Negotiated{Command: Start, Machine: 4, Slot: 1, Response: Refused}
	b, _ := n.MarshalBinary()
	if got, err := ParseNegotiated(b); err != nil || got != n {
		t.Fatalf("%+v, %v", got, err)
	}
	for name, b := range map[string][]byte{
		"short": {0, 1, 0, 0}, "long": {0, 1, 0, 0, 0, 0}, "version": {1, 1, 0, 0, 0},
		"command": {0, 3, 0, 0, 0}, "slot": {0, 1, 0, 2, 0}, "response": {0, 1, 0, 0, 2},
	} {
		if _, err := ParseNegotiated(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseNegotiate(f *testing.F) {
	for _, n := range []Negotiate{{Command: Start, Machine: 1, Program: sample}, {Command: Stop, Slot: 1}} {
		b, _ := n.MarshalBinary()
		f.Add(b)
	}
	for _, m := range Machines() {
		b, _ := Negotiate{Command: Start, Machine: m.ID, Program: m.Relay}.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseNegotiate(b)
		if err != nil {
			return
		}
		again, err := n.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%+v does not round-trip: %v", n, err)
		}
	})
}

func FuzzParseNegotiated(f *testing.F) {
	f.Add([]byte{0, Start, 1, 0, OK})
	f.Add([]byte{0, Stop, 1, 1, Refused})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseNegotiated(b)
		if err != nil {
			return
		}
		if again, _ := n.MarshalBinary(); !bytes.Equal(again, b) {
			t.Fatalf("%+v does not round-trip", n)
		}
	})
}

// Delays fall in the histogram's bins, in proportion to their weights.
func TestDelayHistogram(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 40000
	var first int
	var sum time.Duration
	for range n {
		d := sample.Delay(r)
		if d < 0 || d > 100*time.Millisecond {
			t.Fatalf("delay %v outside the histogram", d)
		}
		if d <= 5*time.Millisecond {
			first++
		}
		sum += d
	}
	if frac := float64(first) / n; frac < 0.73 || frac > 0.77 {
		t.Fatalf("%.3f of delays in the first bin, want 0.75", frac)
	}
	if mean, want := sum/n, sample.MeanDelay(); mean < want*95/100 || mean > want*105/100 {
		t.Fatalf("mean delay %v, want about %v", mean, want)
	}
}

// fakeClock fires timers when the test says so.
type fakeClock struct {
	armed chan time.Duration
	mu    sync.Mutex
	cur   chan time.Time
}

func (f *fakeClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	c := make(chan time.Time, 1)
	f.mu.Lock()
	f.cur = c
	f.mu.Unlock()
	f.armed <- d
	return c, func() bool { return true }
}

func (f *fakeClock) fire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur <- time.Time{}
}

// A half sends its cells, one per timer, and stops at a stop event of
// its program, not at another.
func TestHalfRunsAndStops(t *testing.T) {
	clk := &fakeClock{armed: make(chan time.Duration, 100)}
	h := NewHalf(sample)
	var sent int
	done := make(chan int)
	go func() {
		done <- h.Run(context.Background(), clk, rand.New(rand.NewPCG(1, 1)), func() error { sent++; return nil })
	}()
	for range 3 {
		<-clk.armed
		clk.fire()
	}
	<-clk.armed // the fourth timer is armed: three cells went out
	h.Event(StopOnBackward)
	select {
	case <-h.Stopped():
		t.Fatal("stopped by an event its program does not stop on")
	default:
	}
	h.Event(StopOnForward)
	if n := <-done; n != 3 || sent != 3 {
		t.Fatalf("sent %d (%d), want 3", n, sent)
	}
	all := NewHalf(Program{Cells: 2, Delays: []Bin{{Edge: time.Millisecond, Weight: 1}}})
	go func() {
		done <- all.Run(context.Background(), clk, rand.New(rand.NewPCG(1, 1)), func() error { return nil })
	}()
	<-clk.armed
	clk.fire()
	<-clk.armed
	clk.fire()
	if n := <-done; n != 2 {
		t.Fatalf("sent %d of 2", n)
	}
}

// FRONT machines stay within the limits and their budget, and their
// delays follow the Rayleigh distribution: median w·√(2 ln 2).
func TestFront(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		m := Front(r, DefaultFront)
		for _, p := range []Program{m.Client, m.Relay} {
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			if p.Cells < 1 || p.Cells > DefaultFront.MaxCells || p.Schedule != Offsets {
				t.Fatalf("program %+v", p)
			}
		}
	}
	w := 4 * time.Second
	p := frontHalf(rand.New(rand.NewPCG(1, 1)), FrontConfig{MaxCells: 10, MinWindow: w, MaxWindow: w})
	var below int
	const n = 20000
	median := time.Duration(float64(w) * 1.1774) // √(2 ln 2)
	for range n {
		if p.Delay(r) < median {
			below++
		}
	}
	if frac := float64(below) / n; frac < 0.47 || frac > 0.53 {
		t.Fatalf("%.3f of delays below the Rayleigh median, want 0.5", frac)
	}
}

// With the Offsets schedule the cells go at sorted offsets from the
// start: the timers armed add up to the last offset, within the
// histogram.
func TestOffsetsSchedule(t *testing.T) {
	clk := &fakeClock{armed: make(chan time.Duration, 100)}
	p := Program{Cells: 5, Schedule: Offsets, Delays: []Bin{{Edge: 100 * time.Millisecond, Weight: 1}}}
	done := make(chan int)
	go func() {
		done <- NewHalf(p).Run(context.Background(), clk, rand.New(rand.NewPCG(2, 2)), func() error { return nil })
	}()
	var sum time.Duration
	for range 5 {
		d := <-clk.armed
		if d < 0 {
			t.Fatalf("negative gap %v", d)
		}
		sum += d
		clk.fire()
	}
	if n := <-done; n != 5 || sum > 100*time.Millisecond {
		t.Fatalf("sent %d, offsets end at %v", n, sum)
	}
}

func TestFrontConfigValidate(t *testing.T) {
	if err := DefaultFront.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []FrontConfig{
		{MaxCells: 0, MinWindow: time.Second, MaxWindow: time.Second},
		{MaxCells: MaxCells + 1, MinWindow: time.Second, MaxWindow: time.Second},
		{MaxCells: 10, MinWindow: 0, MaxWindow: time.Second},
		{MaxCells: 10, MinWindow: 2 * time.Second, MaxWindow: time.Second},
		{MaxCells: 10, MinWindow: time.Second, MaxWindow: 20 * time.Second},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	// The largest window valid still draws valid programs.
	c := FrontConfig{MaxCells: MaxCells, MinWindow: MaxDelay * 100 / 303, MaxWindow: MaxDelay * 100 / 303}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := Front(rand.New(rand.NewPCG(1, 1)), c).Relay.Validate(); err != nil {
		t.Fatal(err)
	}
}
