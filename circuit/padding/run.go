package padding

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Clock times padding programs; tests inject a fake one.
type Clock interface {
	// Timer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	Timer(d time.Duration) (<-chan time.Time, func() bool)
}

// SystemClock is the real clock.
type SystemClock struct{}

// Timer implements Clock.
func (SystemClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Half is one running half of a machine: its program and how it stops.
//
// The goroutine of Run sends; others call Event and Stop.
type Half struct {
	p    Program
	stop chan struct{}
	once sync.Once
}

// NewHalf returns a half that runs p (checked by the caller).
func NewHalf(p Program) *Half { return &Half{p: p, stop: make(chan struct{})} }

// Event reports a non-padding cell in the direction e (StopOnForward or
// StopOnBackward); it stops the half if its program stops on e.
func (h *Half) Event(e uint8) {
	if h.p.StopOn&e != 0 {
		h.Stop()
	}
}

// Stop stops the half; it is idempotent.
func (h *Half) Stop() { h.once.Do(func() { close(h.stop) }) }

// Stopped is closed once the half is stopped.
func (h *Half) Stopped() <-chan struct{} { return h.stop }

// Run sends the program's padding cells with send, each after its delay,
// until all are sent, the half is stopped, ctx ends or send fails. It
// returns the cells sent.
func (h *Half) Run(ctx context.Context, clock Clock, r *rand.Rand, send func() error) int {
	defer h.Stop()
	var offsets []time.Duration
	if h.p.Schedule == Offsets {
		offsets = make([]time.Duration, h.p.Cells)
		for i := range offsets {
			offsets[i] = h.p.Delay(r)
		}
		slices.Sort(offsets)
	}
	var last time.Duration
	for n := 0; n < int(h.p.Cells); n++ {
		d := h.p.Delay(r)
		if offsets != nil {
			d, last = offsets[n]-last, offsets[n]
		}
		fired, stop := clock.Timer(d)
		select {
		case <-fired:
		case <-h.stop:
			stop()
			return n
		case <-ctx.Done():
			stop()
			return n
		}
		select {
		case <-h.stop: // stopped while the timer fired
			return n
		default:
		}
		if send() != nil {
			return n
		}
	}
	return int(h.p.Cells)
}

// NewRand returns a generator seeded from the runtime's cryptographic
// source, for one half's delays.
func NewRand() *rand.Rand {
	var s [32]byte
	for i := range 4 {
		binary.LittleEndian.PutUint64(s[8*i:], rand.Uint64())
	}
	return rand.New(rand.NewChaCha8(s))
}
