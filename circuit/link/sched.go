package link

import (
	"container/heap"
	"math"
	"time"

	"github.com/obolnet/obol/circuit"
)

// Outbound scheduling (specs/03-link.md, "Scheduling"): the circuits of a
// channel take turns by recent activity, as Tor's circuitmux EWMA policy
// does. Each circuit keeps an exponentially weighted moving average of
// the cells it sent, halving every HalfLife; the writer always takes the
// next cell of the queued circuit with the lowest average, so quiet and
// interactive circuits go before bulk ones, and a bulk circuit cannot
// hold a new circuit's handshake behind its data. CREATE and CREATED
// cells, and cells of no circuit (a DESTROY for a refused ID), go before
// every circuit's cells.
//
// To keep the order of waiting circuits fixed between their own sends,
// averages are kept scaled to a common time base: a cell sent at time t
// adds 2^((t−base)/HalfLife), so every average decays by the same factor
// and comparing scaled values compares the averages. When the exponent
// grows large the base moves forward and the queued values are scaled
// down alike; an idle circuit's value is scaled when it queues again.

// DefaultHalfLife is the half-life of a circuit's activity average.
const DefaultHalfLife = 5 * time.Second

// rebaseAfter is how many half-lives the time base may lag before the
// scale moves forward (2^40: far from float64's range).
const rebaseAfter = 40

// schedCirc is one circuit's outbound state in its channel's scheduler.
type schedCirc struct {
	q     [][]byte
	ewma  float64 // scaled to the scheduler's base of epoch
	epoch int64   // the scheduler's base (in half-lives) ewma is scaled to
	seq   uint64  // when it last became ready: ties go first come, first served
	idx   int     // position in the ready heap, -1 when not queued
}

func newSchedCirc() *schedCirc { return &schedCirc{idx: -1} }

// scheduler orders a channel's outbound cells. It does no I/O and no
// locking: the channel's mu guards it.
type scheduler struct {
	halfLife time.Duration
	start    time.Time // base times are half-lives since start
	epoch    int64     // the current base, in half-lives since start

	urgent [][]byte  // CREATE, CREATED and circuit-less cells, in order
	ready  readyHeap // circuits with queued cells, lowest average first
	seq    uint64
	n      int // cells queued in all
}

func newScheduler(halfLife time.Duration, now time.Time) *scheduler {
	if halfLife <= 0 {
		halfLife = DefaultHalfLife
	}
	return &scheduler{halfLife: halfLife, start: now}
}

// isUrgent tells the cells that go before every circuit's: a circuit's
// handshake, which a bulk circuit must not delay.
func isUrgent(cell []byte) bool {
	switch circuit.Command(cell[4]) {
	case circuit.CmdCreate, circuit.CmdCreated:
		return true
	}
	return false
}

// push queues cell for sc (nil: a cell of no circuit).
func (s *scheduler) push(sc *schedCirc, cell []byte) {
	s.n++
	if sc == nil || isUrgent(cell) {
		s.urgent = append(s.urgent, cell)
		return
	}
	sc.q = append(sc.q, cell)
	if sc.idx < 0 {
		s.rescale(sc)
		s.seq++
		sc.seq = s.seq
		heap.Push(&s.ready, sc)
	}
}

// pop takes the next cell to write at now, or nil if none is queued.
func (s *scheduler) pop(now time.Time) []byte {
	if len(s.urgent) > 0 {
		cell := s.urgent[0]
		s.urgent[0] = nil
		s.urgent = s.urgent[1:]
		if len(s.urgent) == 0 {
			s.urgent = nil
		}
		s.n--
		return cell
	}
	if len(s.ready) == 0 {
		return nil
	}
	sc := s.ready[0]
	cell := sc.q[0]
	sc.q[0] = nil
	sc.q = sc.q[1:]
	s.n--
	s.count(sc, now)
	if len(sc.q) == 0 {
		sc.q = nil
		heap.Pop(&s.ready)
	} else {
		heap.Fix(&s.ready, 0)
	}
	return cell
}

// count adds one cell sent at now to sc's average.
func (s *scheduler) count(sc *schedCirc, now time.Time) {
	t := float64(now.Sub(s.start)) / float64(s.halfLife) // in half-lives
	if t-float64(s.epoch) > rebaseAfter {
		s.rebase(int64(t))
	}
	s.rescale(sc)
	sc.ewma += math.Exp2(t - float64(s.epoch))
}

// rebase moves the base to epoch, scaling the queued circuits' averages
// alike, so that their order is unchanged.
func (s *scheduler) rebase(epoch int64) {
	s.epoch = epoch
	for _, sc := range s.ready {
		s.rescale(sc)
	}
}

// rescale brings sc's average to the current base.
func (s *scheduler) rescale(sc *schedCirc) {
	if sc.epoch != s.epoch {
		sc.ewma *= math.Exp2(float64(sc.epoch - s.epoch))
		sc.epoch = s.epoch
	}
}

// drop discards sc's queued cells (its circuit closed) and returns them.
func (s *scheduler) drop(sc *schedCirc) [][]byte {
	q := sc.q
	if sc.idx >= 0 {
		heap.Remove(&s.ready, sc.idx)
	}
	s.n -= len(q)
	sc.q = nil
	return q
}

// drain empties the scheduler and returns every queued cell.
func (s *scheduler) drain() [][]byte {
	out := s.urgent
	for _, sc := range s.ready {
		out = append(out, sc.q...)
		sc.q, sc.idx = nil, -1
	}
	s.urgent, s.ready, s.n = nil, nil, 0
	return out
}

// readyHeap is a min-heap of circuits by average, then by arrival.
type readyHeap []*schedCirc

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if h[i].ewma != h[j].ewma {
		return h[i].ewma < h[j].ewma
	}
	return h[i].seq < h[j].seq
}
func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *readyHeap) Push(x any) {
	sc := x.(*schedCirc)
	sc.idx = len(*h)
	*h = append(*h, sc)
}
func (h *readyHeap) Pop() any {
	old := *h
	sc := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	sc.idx = -1
	return sc
}
