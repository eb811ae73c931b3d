package circuittest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// checkLeaks fails the test if goroutines started during it outlive it.
func checkLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// udpEcho echoes datagrams until the test ends.
func udpEcho(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	setBuffers(pc)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

// udpSink counts datagrams until the test ends.
func udpSink(t testing.TB) (string, *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	setBuffers(pc)
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := newBatchReader(newBatchConn(pc), readBatch)
		for {
			ms, err := r.read()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n.Add(int64(len(ms)))
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String(), &n
}

func dialUDP(t testing.TB, addr net.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	setBuffers(c)
	t.Cleanup(func() { c.Close() })
	return c
}

func newDelayUDP(t testing.TB, target string, d time.Duration, opts ...DelayOption) *DelayUDP {
	t.Helper()
	f, err := NewDelayUDP(target, d, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func newDelayTCP(t testing.TB, target string, d time.Duration, opts ...DelayOption) *DelayTCP {
	t.Helper()
	f, err := NewDelayTCP(target, d, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// waitFor polls cond until it holds or the test's patience runs out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDelayUDPRoundTrip(t *testing.T) {
	checkLeaks(t)
	const oneWay = 20 * time.Millisecond
	f := newDelayUDP(t, udpEcho(t), oneWay)
	c := dialUDP(t, f.Addr())
	buf := make([]byte, 64)
	for i := range 10 {
		start := time.Now()
		c.Write([]byte{byte(i)})
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		rtt := time.Since(start)
		if err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("ping %d: %x, %v", i, buf[:n], err)
		}
		if rtt < 2*oneWay {
			t.Fatalf("ping %d: RTT %v < 2×%v", i, rtt, oneWay)
		}
	}
}

func TestDelayUDPKeepsOrder(t *testing.T) {
	checkLeaks(t)
	f := newDelayUDP(t, udpEcho(t), 5*time.Millisecond)
	c := dialUDP(t, f.Addr())
	const batches, per = 20, 50
	buf := make([]byte, 64)
	next := uint32(0)
	for b := range batches {
		for i := range per {
			var p [4]byte
			binary.BigEndian.PutUint32(p[:], uint32(b*per+i))
			c.Write(p[:])
		}
		for range per {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(buf)
			if err != nil || n != 4 {
				t.Fatalf("after %d datagrams: %v", next, err)
			}
			if got := binary.BigEndian.Uint32(buf); got != next {
				t.Fatalf("datagram %d arrived when %d was expected", got, next)
			}
			next++
		}
	}
	// Counting follows delivery, so the last echoes may be counted late.
	waitFor(t, "the count of forwarded datagrams", func() bool { return f.Stats().Forwarded == 2*batches*per })
	if s := f.Stats(); s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDelayUDPLoss(t *testing.T) {
	for _, tt := range []struct {
		loss   float64
		lo, hi int64 // bounds on datagrams dropped out of n
	}{
		{0, 0, 0},
		{1, 1000, 1000},
		{0.3, 200, 400},
	} {
		target, got := udpSink(t)
		f := newDelayUDP(t, target, time.Millisecond, WithLoss(tt.loss), WithSeed(7))
		c := dialUDP(t, f.Addr())
		const n = 1000
		for i := range n {
			c.Write([]byte{byte(i)})
			if i%50 == 49 {
				want := uint64(i + 1)
				waitFor(t, "the forwarder to read", func() bool { s := f.Stats(); return s.Forwarded+s.Dropped == want })
			}
		}
		s := f.Stats()
		waitFor(t, "delivery", func() bool { return uint64(got.Load()) == s.Forwarded })
		if d := int64(s.Dropped); d < tt.lo || d > tt.hi {
			t.Errorf("loss %v: dropped %d of %d, want %d..%d", tt.loss, d, n, tt.lo, tt.hi)
		}
	}
}

func TestDelayUDPBandwidth(t *testing.T) {
	const (
		bw   = 200_000 // bytes per second
		size = 1000
		n    = 60
	)
	target, got := udpSink(t)
	f := newDelayUDP(t, target, time.Millisecond, WithBandwidth(bw))
	c := dialUDP(t, f.Addr())
	start := time.Now()
	for range n {
		c.Write(make([]byte, size))
	}
	waitFor(t, "delivery", func() bool { return got.Load() == n })
	// The last datagram waits for the n-1 before it to be serialised.
	if min, el := time.Duration((n-1)*size)*time.Second/bw, time.Since(start); el < min {
		t.Fatalf("%d bytes at %d B/s took %v < %v", n*size, bw, el, min)
	}
}

func TestDelayUDPQueueLimitDrops(t *testing.T) {
	target, _ := udpSink(t)
	// A 1 kB/s link with a 5 kB queue holds at most 5 datagrams of 1 kB.
	f := newDelayUDP(t, target, time.Millisecond, WithBandwidth(1000), WithQueueBytes(5000))
	c := dialUDP(t, f.Addr())
	for range 20 {
		c.Write(make([]byte, 1000))
	}
	waitFor(t, "the forwarder to read", func() bool { s := f.Stats(); return s.Forwarded+s.Dropped == 20 || s.Dropped >= 15 })
	if s := f.Stats(); s.Dropped < 15 {
		t.Fatalf("stats %+v: want ≥ 15 drops", s)
	}
}

func TestDelayUDPCloseIdempotent(t *testing.T) {
	checkLeaks(t)
	f, err := NewDelayUDP(udpEcho(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := dialUDP(t, f.Addr())
	c.Write([]byte("in flight at close"))
	waitFor(t, "a session", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.sessions) == 1 })
	f.Close()
	f.Close()
}

// tcpEcho echoes every connection, half-closing after the client's EOF.
func tcpEcho(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	return ln.Addr().String()
}

func dialTCP(t testing.TB, addr net.Addr) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func TestDelayTCPRoundTrip(t *testing.T) {
	checkLeaks(t)
	const oneWay = 15 * time.Millisecond
	f := newDelayTCP(t, tcpEcho(t), oneWay)
	c := dialTCP(t, f.Addr())
	c.SetDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 1)
	for i := range 10 {
		start := time.Now()
		c.Write([]byte{byte(i)})
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("ping %d: %x, %v", i, buf, err)
		}
		if rtt := time.Since(start); rtt < 2*oneWay {
			t.Fatalf("ping %d: RTT %v < 2×%v", i, rtt, oneWay)
		}
	}
}

func TestDelayTCPBulkAndHalfClose(t *testing.T) {
	checkLeaks(t)
	f := newDelayTCP(t, tcpEcho(t), 2*time.Millisecond, WithQueueBytes(256<<10))
	c := dialTCP(t, f.Addr())
	c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, 8<<20)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c) // ends only when the echo's FIN came back
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("echoed %d bytes differ from the %d sent", len(got), len(data))
	}
}

func TestDelayTCPBandwidth(t *testing.T) {
	const bw, size = 1 << 20, 512 << 10 // 1 MiB/s, 512 KiB
	f := newDelayTCP(t, tcpEcho(t), time.Millisecond, WithBandwidth(bw))
	c := dialTCP(t, f.Addr())
	c.SetDeadline(time.Now().Add(60 * time.Second))
	start := time.Now()
	go func() { c.Write(make([]byte, size)); c.CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != size {
		t.Fatalf("read %d, %v", len(got), err)
	}
	// Each direction serialises the bytes at bw; the first chunk of each
	// may leave at once, so allow one chunk less.
	if min, el := time.Duration(size-tcpChunk)*time.Second/bw, time.Since(start); el < min {
		t.Fatalf("%d bytes at %d B/s took %v < %v", size, bw, el, min)
	}
}

func TestDelayTCPTargetDown(t *testing.T) {
	checkLeaks(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	target := ln.Addr().String()
	ln.Close()
	f := newDelayTCP(t, target, time.Millisecond)
	c := dialTCP(t, f.Addr())
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read = %v, want the forwarder to close the connection", err)
	}
}

func TestDelayTCPCloseEndsConnections(t *testing.T) {
	checkLeaks(t)
	f, err := NewDelayTCP(tcpEcho(t), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := dialTCP(t, f.Addr())
	c.Write([]byte("stuck in a one-hour link"))
	waitFor(t, "a forwarded connection", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.conns) == 2 })
	f.Close()
	f.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatalf("read %d bytes after Close", n)
	}
}
