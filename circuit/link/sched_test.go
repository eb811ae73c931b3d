package link

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
)

// schedCell is a cell of circuit id with command cmd and a sequence
// number in its payload.
func schedCell(id uint32, cmd circuit.Command, seq int) []byte {
	b := make([]byte, circuit.CellSize)
	binary.BigEndian.PutUint32(b, id)
	b[4] = byte(cmd)
	binary.BigEndian.PutUint32(b[circuit.CellHeaderLen:], uint32(seq))
	return b
}

func cellID(b []byte) (uint32, int) {
	return binary.BigEndian.Uint32(b), int(binary.BigEndian.Uint32(b[circuit.CellHeaderLen:]))
}

// popAll pops every queued cell at now and returns their (circuit, seq).
func popAll(s *scheduler, now time.Time) [][2]int {
	var out [][2]int
	for c := s.pop(now); c != nil; c = s.pop(now) {
		id, seq := cellID(c)
		out = append(out, [2]int{int(id), seq})
	}
	return out
}

// bulk makes sc send n cells, one every gap from at, and returns the time
// after the last.
func bulk(s *scheduler, sc *schedCirc, id uint32, n int, at time.Time, gap time.Duration) time.Time {
	for i := range n {
		s.push(sc, schedCell(id, circuit.CmdRelay, i))
		s.pop(at)
		at = at.Add(gap)
	}
	return at
}

func TestSchedulerQuietBeforeBulk(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newScheduler(5*time.Second, t0)
	busy, quiet := newSchedCirc(), newSchedCirc()
	now := bulk(s, busy, 1, 2000, t0, time.Millisecond)
	for i := range 50 {
		s.push(busy, schedCell(1, circuit.CmdRelay, 10000+i))
	}
	s.push(quiet, schedCell(2, circuit.CmdRelay, 0))
	s.push(quiet, schedCell(2, circuit.CmdRelay, 1))
	got := popAll(s, now)
	if got[0] != [2]int{2, 0} || got[1] != [2]int{2, 1} {
		t.Fatalf("first cells %v: the quiet circuit waited behind the bulk one", got[:3])
	}
	for i, c := range got[2:] {
		if c != [2]int{1, 10000 + i} {
			t.Fatalf("bulk cell %d is %v: a circuit's cells left out of order", i, c)
		}
	}
	if s.n != 0 {
		t.Fatalf("%d cells counted after popping all", s.n)
	}
}

func TestSchedulerHandshakeCellsFirst(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newScheduler(5*time.Second, t0)
	busy, fresh := newSchedCirc(), newSchedCirc()
	for i := range 10 {
		s.push(busy, schedCell(1, circuit.CmdRelay, i))
	}
	s.push(fresh, schedCell(2, circuit.CmdCreated, 0))
	s.push(nil, schedCell(3, circuit.CmdDestroy, 0)) // a refused circuit ID
	s.push(fresh, schedCell(2, circuit.CmdRelay, 1))
	got := popAll(s, t0)
	want := [][2]int{{2, 0}, {3, 0}}
	if got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("first cells %v, want CREATED then the circuit-less DESTROY", got[:2])
	}
	if len(got) != 13 {
		t.Fatalf("%d cells popped, want 13", len(got))
	}
}

// Activity decays: a circuit busy long ago is no longer behind one that
// sent a little just now.
func TestSchedulerActivityDecays(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := 5 * time.Second
	s := newScheduler(h, t0)
	old, recent := newSchedCirc(), newSchedCirc()
	bulk(s, old, 1, 1000, t0, 0)    // 1000 cells at t0
	later := t0.Add(20 * h)         // 1000 / 2^20 ≈ 0.001 left
	bulk(s, recent, 2, 5, later, 0) // 5 cells now
	s.push(recent, schedCell(2, circuit.CmdRelay, 99))
	s.push(old, schedCell(1, circuit.CmdRelay, 99))
	if got := popAll(s, later); got[0][0] != 1 {
		t.Fatalf("order %v: a circuit idle for 20 half-lives still counted as busy", got)
	}
	// Shortly after the burst, the order is the other way round.
	s2 := newScheduler(h, t0)
	old, recent = newSchedCirc(), newSchedCirc()
	bulk(s2, old, 1, 1000, t0, 0)
	soon := t0.Add(h)
	bulk(s2, recent, 2, 5, soon, 0)
	s2.push(old, schedCell(1, circuit.CmdRelay, 99))
	s2.push(recent, schedCell(2, circuit.CmdRelay, 99))
	if got := popAll(s2, soon); got[0][0] != 2 {
		t.Fatalf("order %v: a circuit that sent 1000 cells one half-life ago went first", got)
	}
}

// Bulk circuits that are all queued share the channel about equally.
func TestSchedulerSharesBetweenBulkCircuits(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newScheduler(5*time.Second, t0)
	circs := []*schedCirc{newSchedCirc(), newSchedCirc(), newSchedCirc()}
	now := bulk(s, circs[0], 0, 500, t0, time.Millisecond) // a head start in activity
	sent := make([]int, len(circs))
	next := make([]int, len(circs))
	for i := range 3000 {
		for id, sc := range circs {
			for len(sc.q) < 4 {
				s.push(sc, schedCell(uint32(id), circuit.CmdRelay, next[id]))
				next[id]++
			}
		}
		id, _ := cellID(s.pop(now.Add(time.Duration(i) * time.Millisecond)))
		sent[id]++
	}
	// Circuit 0 had 500 cells more of recent activity: the others catch
	// up first, then all three alternate.
	for id := 1; id < 3; id++ {
		if d := sent[id] - (sent[0] + 500*90/100); d < -60 || d > 60 {
			t.Fatalf("cells sent %v: circuit %d not sharing fairly", sent, id)
		}
	}
}

// The time base moves forward over a long run without losing the order
// or overflowing.
func TestSchedulerRebase(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := time.Second
	s := newScheduler(h, t0)
	a, b := newSchedCirc(), newSchedCirc()
	now := t0
	for range 200 { // 200 half-lives, base moved several times
		now = bulk(s, a, 1, 10, now, h/10)
	}
	if s.epoch == 0 {
		t.Fatal("the base never moved")
	}
	if math.IsInf(a.ewma, 0) || math.IsNaN(a.ewma) || a.ewma <= 0 {
		t.Fatalf("average %v after a long run", a.ewma)
	}
	bulk(s, b, 2, 1, now, 0)
	s.push(a, schedCell(1, circuit.CmdRelay, 99))
	s.push(b, schedCell(2, circuit.CmdRelay, 99))
	if got := popAll(s, now); got[0][0] != 2 {
		t.Fatalf("order %v after rebasing: the busy circuit went first", got)
	}
}

func TestSchedulerDropAndDrain(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newScheduler(0, t0)
	a, b := newSchedCirc(), newSchedCirc()
	for i := range 3 {
		s.push(a, schedCell(1, circuit.CmdRelay, i))
		s.push(b, schedCell(2, circuit.CmdRelay, i))
	}
	s.push(nil, schedCell(9, circuit.CmdDestroy, 0))
	if n := len(s.drop(a)); n != 3 || s.n != 4 || a.idx != -1 {
		t.Fatalf("drop returned %d cells, %d left, idx %d", n, s.n, a.idx)
	}
	if got := popAll(s, t0); len(got) != 4 || got[0][0] != 9 {
		t.Fatalf("after drop: %v", got)
	}
	s.push(b, schedCell(2, circuit.CmdRelay, 7))
	if n := len(s.drain()); n != 1 || s.n != 0 || s.pop(t0) != nil {
		t.Fatalf("drain returned %d cells, %d counted", n, s.n)
	}
}
