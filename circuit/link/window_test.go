package link

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
)

func ackPayload(count uint64) []byte {
	cell := linkAckCell(count)
	defer Release(cell)
	return append([]byte(nil), cell[circuit.CellHeaderLen:]...)
}

func TestParseLinkAck(t *testing.T) {
	if n, err := parseLinkAck(ackPayload(12345)); err != nil || n != 12345 {
		t.Fatalf("round trip: %d, %v", n, err)
	}
	padded := ackPayload(1)
	padded[100] = 1
	for name, p := range map[string][]byte{
		"truncated": ackPayload(1)[:8],
		"long":      append(ackPayload(1), 0),
		"padding":   padded,
	} {
		if _, err := parseLinkAck(p); !errors.Is(err, ErrBadLinkAck) {
			t.Errorf("%s: %v, want ErrBadLinkAck", name, err)
		}
	}
}

func FuzzParseLinkAck(f *testing.F) {
	f.Add(ackPayload(0))
	f.Add(ackPayload(1 << 40))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, p []byte) {
		n, err := parseLinkAck(p)
		if err != nil {
			return
		}
		if back := ackPayload(n); string(back) != string(p) {
			t.Fatalf("%x parsed as %d, which encodes as %x", p, n, back)
		}
	})
}

// A window opens only once the peer acknowledges; then it bounds the
// cells in flight.
func TestWindowBoundsInFlight(t *testing.T) {
	w := newWindow()
	now := time.Unix(1000, 0)
	for range 1000 {
		if !w.open() {
			t.Fatal("window shut before the peer acknowledged anything")
		}
		w.wrote(now)
	}
	if err := w.onAck(992, now.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; w.open(); n++ {
		w.wrote(now)
	}
	if inflight := 8 + n; inflight != w.size {
		t.Fatalf("%d cells in flight, window %d", inflight, w.size)
	}
}

// An acknowledgement of cells never sent, or one going backwards, is an
// error: a peer cannot open the window for cells it has not read.
func TestWindowRejectsBadAcks(t *testing.T) {
	w := newWindow()
	now := time.Unix(1000, 0)
	for range 64 {
		w.wrote(now)
	}
	if err := w.onAck(65, now); !errors.Is(err, ErrBadLinkAck) {
		t.Fatalf("ack of unsent cells: %v", err)
	}
	if err := w.onAck(64, now); err != nil {
		t.Fatal(err)
	}
	if err := w.onAck(32, now); !errors.Is(err, ErrBadLinkAck) {
		t.Fatalf("ack going backwards: %v", err)
	}
}

// The window grows while round trips stay at their minimum and shrinks,
// never below minWindow, when they grow: cells pile up somewhere on the
// way.
func TestWindowVegas(t *testing.T) {
	w := newWindow()
	now := time.Unix(1000, 0)
	rtt := time.Millisecond
	step := func(rtt time.Duration) {
		for range ackEvery {
			w.wrote(now)
		}
		now = now.Add(rtt)
		if err := w.onAck(w.written, now); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		step(rtt)
	}
	if w.size != initialWindow+20*windowStep {
		t.Fatalf("window %d after 20 acks at the minimum round trip, want %d", w.size, initialWindow+20*windowStep)
	}
	for range 100 {
		step(8 * rtt)
	}
	if w.size != minWindow {
		t.Fatalf("window %d after 100 acks at 8× the round trip, want %d", w.size, minWindow)
	}
	for range 1000 {
		step(rtt)
	}
	if w.size != maxWindow {
		t.Fatalf("window %d, want at most %d", w.size, maxWindow)
	}
}

// A peer that acknowledges cells it was never sent, to open the window
// for more than it reads, loses its channel.
func TestLinkAckOfUnsentCellsClosesChannel(t *testing.T) {
	_, mb, _ := pairWith(t, Config{})
	s := rawStream(t, newHost(t), mb.Host())
	ack := linkAckCell(1 << 20)
	if _, err := s.Write(ack); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := s.Read(make([]byte, circuit.CellSize)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after a bogus LINK_ACK: %v, want the channel reset", err)
	}
}
