package netemu

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeDev is a device whose packets the test feeds and collects.
type fakeDev struct {
	in, out chan []byte
	closed  chan struct{}
	once    sync.Once
	readErr error // returned by Read instead of a packet, if set
}

func newFakeDev() *fakeDev {
	return &fakeDev{in: make(chan []byte), out: make(chan []byte, 1<<12), closed: make(chan struct{})}
}

func (d *fakeDev) Read(b []byte) (int, error) {
	select {
	case p := <-d.in:
		if d.readErr != nil {
			return 0, d.readErr
		}
		return copy(b, p), nil
	case <-d.closed:
		return 0, os.ErrClosed
	}
}

func (d *fakeDev) Write(b []byte) (int, error) {
	select {
	case d.out <- append([]byte(nil), b...):
		return len(b), nil
	case <-d.closed:
		return 0, os.ErrClosed
	}
}

func (d *fakeDev) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

// ipv4 is a minimal IPv4 packet from src to dst carrying seq.
func ipv4(src, dst netip.Addr, seq uint32) []byte {
	p := make([]byte, ipv4MinHeader+4)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8], p[9] = 64, 17
	copy(p[ipv4SrcOffset:], src.AsSlice())
	copy(p[ipv4DstOffset:], dst.AsSlice())
	binary.BigEndian.PutUint32(p[ipv4MinHeader:], seq)
	return p
}

func seqOf(p []byte) uint32 { return binary.BigEndian.Uint32(p[ipv4MinHeader:]) }

var (
	addrA = netip.MustParseAddr("10.1.0.1")
	addrB = netip.MustParseAddr("10.2.0.1")
	addrC = netip.MustParseAddr("10.3.0.1")
)

func TestParseIPv4(t *testing.T) {
	good := ipv4(addrA, addrB, 1)
	withOptions := append([]byte{0x46}, good[1:]...) // IHL 6: 24-byte header
	binary.BigEndian.PutUint16(withOptions[2:], uint16(len(withOptions)))
	v6 := append([]byte{0x60}, good[1:]...)
	longTotal := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(longTotal[2:], uint16(len(good)+1))
	shortIHL := append([]byte{0x44}, good[1:]...)
	for _, tc := range []struct {
		name     string
		p        []byte
		ok       bool
		src, dst netip.Addr
	}{
		{"plain", good, true, addrA, addrB},
		{"options", withOptions, true, addrA, addrB},
		{"trailing bytes", append(append([]byte(nil), good...), 0, 0), true, addrA, addrB},
		{"ipv6", v6, false, netip.Addr{}, netip.Addr{}},
		{"short", good[:19], false, netip.Addr{}, netip.Addr{}},
		{"empty", nil, false, netip.Addr{}, netip.Addr{}},
		{"total past the end", longTotal, false, netip.Addr{}, netip.Addr{}},
		{"header under 20 bytes", shortIHL, false, netip.Addr{}, netip.Addr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst, ok := parseIPv4(tc.p)
			if ok != tc.ok || src != tc.src || dst != tc.dst {
				t.Errorf("parseIPv4 = %v %v %v, want %v %v %v", src, dst, ok, tc.src, tc.dst, tc.ok)
			}
		})
	}
}

// net3 runs a Forwarder over three fake devices A, B, C in a synctest
// bubble and hands them to fn; it stops the Forwarder afterwards.
func net3(t *testing.T, delay DelayFunc, queue int, fn func(f *Forwarder, a, b, c *fakeDev)) {
	synctest.Test(t, func(t *testing.T) {
		f := NewForwarder(delay, queue)
		a, b, c := newFakeDev(), newFakeDev(), newFakeDev()
		f.Add(addrA, a)
		f.Add(addrB, b)
		f.Add(addrC, c)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		fn(f, a, b, c)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	})
}

// TestForwarderDelay checks, in virtual time, that each link delays by
// its own one-way delay: a packet sent first on a longer link arrives
// after one sent later on a shorter link.
func TestForwarderDelay(t *testing.T) {
	delay := func(from, to int) time.Duration {
		switch {
		case from == 0 && to == 1:
			return 30 * time.Millisecond
		case from == 0 && to == 2:
			return 10 * time.Millisecond
		}
		return 5 * time.Millisecond
	}
	net3(t, delay, 0, func(f *Forwarder, a, b, c *fakeDev) {
		start := time.Now()
		a.in <- ipv4(addrA, addrB, 1)
		a.in <- ipv4(addrA, addrC, 2)
		b.in <- ipv4(addrB, addrA, 3)
		type arrival struct {
			seq uint32
			at  time.Duration
		}
		var got []arrival
		for range 3 {
			select {
			case p := <-a.out:
				got = append(got, arrival{seqOf(p), time.Since(start)})
			case p := <-b.out:
				got = append(got, arrival{seqOf(p), time.Since(start)})
			case p := <-c.out:
				got = append(got, arrival{seqOf(p), time.Since(start)})
			}
		}
		want := []arrival{{3, 5 * time.Millisecond}, {2, 10 * time.Millisecond}, {1, 30 * time.Millisecond}}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("arrivals %v, want %v", got, want)
				break
			}
		}
		if s := f.Stats(); s.Forwarded != 3 {
			t.Errorf("stats %+v, want 3 forwarded", s)
		}
	})
}

// TestForwarderFIFO sends packets on one link at uneven intervals and
// checks that they arrive in order, each exactly one delay after it left.
func TestForwarderFIFO(t *testing.T) {
	const n = 2000
	net3(t, Constant(10*time.Millisecond), 0, func(f *Forwarder, a, b, c *fakeDev) {
		sent := make([]time.Time, n)
		go func() {
			for i := range n {
				sent[i] = time.Now()
				a.in <- ipv4(addrA, addrB, uint32(i))
				if i%7 == 0 {
					time.Sleep(time.Duration(i%5) * time.Millisecond)
				}
			}
		}()
		for i := range n {
			p := <-b.out
			if got := seqOf(p); got != uint32(i) {
				t.Fatalf("packet %d arrived in place %d", got, i)
			}
			if d := time.Since(sent[i]); d != 10*time.Millisecond {
				t.Fatalf("packet %d took %v, want 10ms", i, d)
			}
		}
	})
}

// TestForwarderDrops checks what is dropped and counted: packets that are
// not IPv4, to no node, to the sender itself, or past a full queue.
func TestForwarderDrops(t *testing.T) {
	net3(t, Constant(time.Millisecond), 4, func(f *Forwarder, a, b, c *fakeDev) {
		a.in <- []byte{0x60, 0, 0}
		a.in <- ipv4(addrA, netip.MustParseAddr("10.9.0.1"), 0)
		a.in <- ipv4(addrA, addrA, 0)
		for i := range 10 { // sent at one instant: the queue's four fit, and
			// one more if the link's sender has taken the first off it
			a.in <- ipv4(addrA, addrC, uint32(i))
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		var got int
		for len(c.out) > 0 {
			if seq := seqOf(<-c.out); seq != uint32(got) {
				t.Fatalf("got packet %d, want %d", seq, got)
			}
			got++
		}
		s := f.Stats()
		if got < 4 || got > 5 {
			t.Errorf("%d packets through a queue of 4, want 4 or 5", got)
		}
		want := Stats{Forwarded: uint64(got), NotIPv4: 1, NoRoute: 2, Overflow: uint64(10 - got)}
		if s != want {
			t.Errorf("stats %+v, want %+v", s, want)
		}
	})
}

// TestForwarderReadError checks that Run ends with a device's read
// error and closes every device.
func TestForwarderReadError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewForwarder(Constant(time.Millisecond), 0)
		a, b := newFakeDev(), newFakeDev()
		broken := errors.New("device gone")
		a.readErr = broken
		f.Add(addrA, a)
		f.Add(addrB, b)
		done := make(chan error, 1)
		go func() { done <- f.Run(t.Context()) }()
		a.in <- nil
		if err := <-done; !errors.Is(err, broken) {
			t.Errorf("Run = %v, want %v", err, broken)
		}
		for _, d := range []*fakeDev{a, b} {
			select {
			case <-d.closed:
			default:
				t.Error("a device was left open")
			}
		}
	})
}
