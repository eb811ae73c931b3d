package circuittest

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkDelayUDP sends b.N datagrams of 1200 bytes (a QUIC-sized
// packet) through a forwarder with a 1 ms delay to a sink, unpaced and
// paced at fixed rates, and reports the delivered rate and share. Unpaced,
// the sender, forwarder and sink share the machine's cores and the excess
// is dropped, as a full router queue would.
func BenchmarkDelayUDP(b *testing.B) {
	for _, pps := range []int{0, 20_000, 50_000, 100_000} {
		name := "unpaced"
		if pps > 0 {
			name = fmt.Sprintf("paced-%dk", pps/1000)
		}
		b.Run(name, func(b *testing.B) { benchUDP(b, pps) })
	}
}

func benchUDP(b *testing.B, pps int) {
	target, got := udpSink(b)
	f := newDelayUDP(b, target, time.Millisecond)
	c := dialUDP(b, f.Addr())
	pkt := make([]byte, 1200)
	b.SetBytes(int64(len(pkt)))
	const burst = 16
	start := time.Now()
	for i := range b.N {
		if pps > 0 && i%burst == 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(pps))))
		}
		c.Write(pkt)
	}
	settle(func() int64 { return got.Load() }, int64(b.N))
	el := time.Since(start)
	b.ReportMetric(float64(got.Load())/el.Seconds(), "delivered-pkt/s")
	b.ReportMetric(100*float64(got.Load())/float64(b.N), "delivered-%")
}

// settle waits until count reaches want or stops moving for 100 ms.
func settle(count func() int64, want int64) {
	last, since := count(), time.Now()
	for last < want && time.Since(since) < 100*time.Millisecond {
		time.Sleep(time.Millisecond)
		if n := count(); n != last {
			last, since = n, time.Now()
		}
	}
}

// BenchmarkDelayTCP streams b.N bytes (in 64 KiB writes) through a TCP
// forwarder with a 1 ms delay to a discarding server.
func BenchmarkDelayTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- n
	}()
	defer ln.Close()
	f := newDelayTCP(b, ln.Addr().String(), time.Millisecond)
	c := dialTCP(b, f.Addr())
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.CloseWrite()
	if n := <-done; n != int64(b.N*len(buf)) {
		b.Fatalf("received %d of %d bytes", n, b.N*len(buf))
	}
}
