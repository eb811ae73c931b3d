// Package flow is obol's circuit-level congestion control and stream-level
// flow control, without I/O.
//
// Circuit level (between the client and the hop that ends its streams, in
// each direction): the receiver acknowledges every SendmeEvery DATA cells
// with a circuit SENDME; the sender keeps at most cwnd DATA cells
// unacknowledged and adapts cwnd with TCP Vegas (as Tor's proposal 324):
// it estimates the cells queued on the path from the congestion window,
// the smallest RTT seen and the current RTT, and grows the window while
// that queue is small and shrinks it when it grows. So one circuit is not
// capped by a fixed window on a long-RTT path.
//
// Stream level: the receiver buffers a stream's data until the
// application reads it and tells the sender XOFF when the buffer passes a
// high mark and XON when it drains below a low mark, so a slow reader
// back-pressures its own stream only. specs/04-circuit.md §16 is the
// protocol.
package flow

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Parameters of congestion control, in cells.
const (
	SendmeEvery = 50   // DATA cells per circuit SENDME
	InitialCwnd = 250  // window at circuit start
	MinCwnd     = 200  // never below
	MaxCwnd     = 4000 // never above; relays queue at most 4096 cells per circuit
	vegasAlpha  = 6 * SendmeEvery
	vegasBeta   = 12 * SendmeEvery
	vegasGamma  = 6 * SendmeEvery
)

// Errors.
var (
	ErrUnexpectedSendme = errors.New("flow: SENDME acknowledges cells never sent")
	ErrSendmeTag        = errors.New("flow: SENDME does not echo the tag of the cell it acknowledges")
	ErrClosed           = errors.New("flow: closed")
)

// Tag is a relay cell's tag (circuit.TagLen bytes, specs/04 §6.2), which an
// authenticated SENDME echoes.
type Tag [16]byte

// mark is the cell that completes a window: when it was sent and its tag.
type mark struct {
	at  time.Time
	tag Tag
}

// Sender is the sending side of one circuit direction. It is safe for
// concurrent use: many streams acquire sending credit from one circuit.
type Sender struct {
	mu        sync.Mutex // guards the fields below
	cwnd      int
	inflight  int
	sent      int64  // DATA cells sealed in all
	marks     []mark // cells whose SENDME is awaited
	minRTT    time.Duration
	rtt       time.Duration
	slowStart bool
	err       error
	wake      chan struct{} // closed and replaced when credit frees up
}

// NewSender returns a sender with the initial window.
func NewSender() *Sender {
	return &Sender{cwnd: InitialCwnd, slowStart: true, wake: make(chan struct{})}
}

// Acquire waits until one DATA cell may be sent and counts it as in
// flight. Once the cell is sealed, Sealed must be called with its tag, in
// the order the cells go out.
func (s *Sender) Acquire(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.err != nil {
			s.mu.Unlock()
			return s.err
		}
		if s.inflight < s.cwnd {
			s.inflight++
			s.mu.Unlock()
			return nil
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release gives back a slot that Acquire granted for a cell that was then
// not sent (its stream ended meanwhile). Without it the slot would stay in
// flight for ever, and a circuit that outlives enough such streams would
// stall with its window full.
func (s *Sender) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight == 0 || s.err != nil {
		return // nothing to give back, or closed (wake is closed for good)
	}
	s.inflight-- // never sealed, so never counted in sent
	close(s.wake)
	s.wake = make(chan struct{})
}

// Sealed records that a DATA cell with tag went out at now. Every
// SendmeEvery-th cell is remembered: its SENDME must echo its tag.
func (s *Sender) Sealed(tag Tag, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	if s.sent%SendmeEvery == 0 {
		s.marks = append(s.marks, mark{at: now, tag: tag})
	}
}

// OnSendme records a circuit SENDME that arrived at now echoing tag:
// SendmeEvery cells are no longer in flight, and the RTT of the cell that
// completed the window updates the window. A SENDME for cells not yet
// sent, or whose tag is not that cell's (the receiver did not read it),
// is an error.
func (s *Sender) OnSendme(now time.Time, tag Tag) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.marks) == 0 || s.inflight < SendmeEvery {
		return ErrUnexpectedSendme
	}
	if s.marks[0].tag != tag {
		return ErrSendmeTag
	}
	rtt := now.Sub(s.marks[0].at)
	s.marks = s.marks[1:]
	s.inflight -= SendmeEvery
	s.update(rtt)
	close(s.wake)
	s.wake = make(chan struct{})
	return nil
}

// update is one Vegas step.
func (s *Sender) update(rtt time.Duration) {
	if rtt <= 0 {
		rtt = time.Microsecond
	}
	s.rtt = rtt
	if s.minRTT == 0 || rtt < s.minRTT {
		s.minRTT = rtt
	}
	// Cells queued on the path: cwnd minus what the path holds at the
	// base RTT.
	bdp := int(int64(s.cwnd) * int64(s.minRTT) / int64(rtt))
	queue := s.cwnd - bdp
	switch {
	case s.slowStart && queue > vegasGamma:
		s.slowStart = false
		s.cwnd = max(bdp+vegasGamma, MinCwnd)
	case s.slowStart:
		s.cwnd += s.cwnd / 2
	case queue < vegasAlpha:
		s.cwnd += SendmeEvery
	case queue > vegasBeta:
		s.cwnd -= SendmeEvery
	}
	s.cwnd = min(max(s.cwnd, MinCwnd), MaxCwnd)
}

// Close fails every waiting and future Acquire with err.
func (s *Sender) Close(err error) {
	if err == nil {
		err = ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		close(s.wake)
	}
}

// Stats is a snapshot of a sender's state.
type Stats struct {
	Cwnd, Inflight int
	MinRTT, RTT    time.Duration
	SlowStart      bool
}

// Stats returns the current window and RTT estimates.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{s.cwnd, s.inflight, s.minRTT, s.rtt, s.slowStart}
}

// Receiver is the receiving side of one circuit direction.
type Receiver struct {
	mu        sync.Mutex
	delivered int64
}

// OnData counts one delivered DATA cell, whose tag is given, and reports
// whether a circuit SENDME, echoing that tag, must be sent now.
func (r *Receiver) OnData(tag Tag) (Tag, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivered++
	return tag, r.delivered%SendmeEvery == 0
}
