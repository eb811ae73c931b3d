package flow

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// send acquires and seals one cell whose tag is its number.
func send(t testing.TB, s *Sender, ctx context.Context, n int, now time.Time) error {
	if err := s.Acquire(ctx); err != nil {
		return err
	}
	s.Sealed(tagOf(n), now)
	return nil
}

func tagOf(n int) Tag { return Tag{byte(n), byte(n >> 8), byte(n >> 16)} }

func TestSenderBlocksAtWindow(t *testing.T) {
	s := NewSender()
	ctx := context.Background()
	for i := range InitialCwnd {
		if err := send(t, s, ctx, i+1, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := s.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquired past the window: %v", err)
	}
	if err := s.OnSendme(time.Now(), tagOf(SendmeEvery)); err != nil {
		t.Fatal(err)
	}
	if err := s.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestUnexpectedSendmeRejected(t *testing.T) {
	s := NewSender()
	if err := s.OnSendme(time.Now(), Tag{}); !errors.Is(err, ErrUnexpectedSendme) {
		t.Fatalf("got %v", err)
	}
	for i := range SendmeEvery - 1 {
		send(t, s, context.Background(), i+1, time.Now())
	}
	if err := s.OnSendme(time.Now(), Tag{}); !errors.Is(err, ErrUnexpectedSendme) {
		t.Fatalf("a SENDME before a whole window was sent: got %v", err)
	}
}

// A SENDME must echo the tag of the cell that completed the window: a
// receiver cannot acknowledge cells it has not decrypted.
func TestSendmeTagChecked(t *testing.T) {
	s := NewSender()
	for i := range SendmeEvery {
		send(t, s, context.Background(), i+1, time.Now())
	}
	if err := s.OnSendme(time.Now(), tagOf(SendmeEvery-1)); !errors.Is(err, ErrSendmeTag) {
		t.Fatalf("wrong tag: got %v", err)
	}
	if err := s.OnSendme(time.Now(), Tag{}); !errors.Is(err, ErrSendmeTag) {
		t.Fatalf("zero tag: got %v", err)
	}
	if err := s.OnSendme(time.Now(), tagOf(SendmeEvery)); err != nil {
		t.Fatal(err)
	}
}

// simulate runs a sender against a path with base RTT base whose
// bottleneck holds bdp cells in flight at that RTT; cells beyond that
// queue and stretch the RTT. It returns the state after acks SENDMEs.
func simulate(t *testing.T, base time.Duration, bdp int, acks int) Stats {
	s := NewSender()
	clock := time.Unix(0, 0)
	now := func() time.Time { return clock }
	sent := 0
	for range acks {
		for s.Stats().Inflight < s.Stats().Cwnd {
			sent++
			send(t, s, context.Background(), sent, now())
		}
		queued := max(0, s.Stats().Inflight-bdp)
		rtt := base + time.Duration(int64(base)*int64(queued)/int64(bdp))
		if at := s.marks[0].at.Add(rtt); at.After(clock) {
			clock = at
		}
		if err := s.OnSendme(clock, s.marks[0].tag); err != nil {
			t.Fatal(err)
		}
	}
	return s.Stats()
}

// On a long path with room, the window grows well past its start (no
// fixed cap); with a narrow bottleneck it settles near the bottleneck.
func TestVegasAdapts(t *testing.T) {
	wide := simulate(t, 80*time.Millisecond, 3000, 400)
	if wide.Cwnd < 1500 {
		t.Fatalf("window %d on an uncongested 80 ms path; want it to grow", wide.Cwnd)
	}
	narrow := simulate(t, 80*time.Millisecond, 300, 400)
	if narrow.Cwnd > 300+vegasBeta+2*SendmeEvery || narrow.Cwnd < MinCwnd {
		t.Fatalf("window %d with a 300-cell bottleneck", narrow.Cwnd)
	}
}

func TestSenderClose(t *testing.T) {
	s := NewSender()
	for range InitialCwnd {
		s.Acquire(context.Background())
	}
	done := make(chan error)
	go func() { done <- s.Acquire(context.Background()) }()
	boom := errors.New("boom")
	s.Close(boom)
	if err := <-done; !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

func TestReceiverSendmeEvery(t *testing.T) {
	var r Receiver
	n := 0
	for i := range 10 * SendmeEvery {
		if tag, ok := r.OnData(tagOf(i)); ok {
			n++
			if tag != tagOf(i) {
				t.Fatal("SENDME would not echo the tag of the cell that completed the window")
			}
		}
	}
	if n != 10 {
		t.Fatalf("%d SENDMEs, want 10", n)
	}
}

func TestStreamBufferXoffXon(t *testing.T) {
	b := NewStreamBuffer()
	chunk := make([]byte, 1000)
	var sigs []Signal
	for range XoffAbove/1000 + 2 {
		s, err := b.Push(chunk)
		if err != nil {
			t.Fatal(err)
		}
		if s != SignalNone {
			sigs = append(sigs, s)
		}
	}
	if len(sigs) != 1 || sigs[0] != SignalXoff {
		t.Fatalf("signals %v, want one XOFF", sigs)
	}
	p := make([]byte, 4096)
	gotXon := false
	for b.Buffered() > 0 {
		_, s, err := b.Read(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if s == SignalXon {
			if gotXon || b.Buffered() >= XonBelow {
				t.Fatal("XON twice or too early")
			}
			gotXon = true
		}
	}
	if !gotXon {
		t.Fatal("no XON after draining")
	}
	b.CloseWrite(io.EOF)
	if _, _, err := b.Read(context.Background(), p); err != io.EOF {
		t.Fatalf("got %v, want EOF", err)
	}
}

func TestStreamBufferOverrun(t *testing.T) {
	b := NewStreamBuffer()
	if _, err := b.Push(make([]byte, HardLimit+1)); !errors.Is(err, ErrBufferOverrun) {
		t.Fatalf("got %v", err)
	}
}

func TestGate(t *testing.T) {
	g := NewGate()
	g.Set(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := g.Wait(ctx); err == nil {
		t.Fatal("passed a closed gate")
	}
	done := make(chan error)
	go func() { done <- g.Wait(context.Background()) }()
	g.Set(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
