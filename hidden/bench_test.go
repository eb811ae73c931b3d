package hidden_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/relaynet"
)

// BenchmarkFirstByte measures the time from Dial to the first byte of a
// 1 KiB answer from a hidden service: with a cold client (no descriptor,
// no session), a warm descriptor cache (new rendezvous) and a warm
// session (a new stream on the joined circuit), on loopback and with
// 10 ms one-way delay on every link to and between relays (the DHT
// lookups between relays are not delayed).
//
//	go test -run XXX -bench FirstByte -benchtime 20x ./hidden
func BenchmarkFirstByte(b *testing.B) {
	for _, delay := range []time.Duration{0, 10 * time.Millisecond} {
		tn := newTestNet(b, 8)
		if delay > 0 {
			delayLinks(b, tn, delay)
		}
		l, _ := tn.listen(newKey(b))
		eventually(b, 60*time.Second, "every replica stored", func() bool { return l.Status().Stored == 6 })
		go serveFixed(l)
		n, _ := tn.endpoint()
		firstByte := func(b *testing.B, c *hidden.Connector) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			conn, err := c.Dial(ctx, "tcp", l.Address()+":80")
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			conn.Write([]byte("GET\n"))
			var one [1]byte
			if _, err := io.ReadFull(conn, one[:]); err != nil {
				b.Fatal(err)
			}
		}
		report := func(b *testing.B) {
			if delay > 0 {
				b.ReportMetric(float64(12*delay)/float64(time.Millisecond), "joined-RTT-ms")
			}
		}
		b.Run(fmt.Sprintf("Cold/delay=%v", delay), func(b *testing.B) {
			for b.Loop() {
				c, err := hidden.NewConnector(n)
				if err != nil {
					b.Fatal(err)
				}
				firstByte(b, c)
				c.Close()
			}
			report(b)
		})
		c, err := hidden.NewConnector(n)
		if err != nil {
			b.Fatal(err)
		}
		firstByte(b, c)
		b.Run(fmt.Sprintf("WarmDescriptor/delay=%v", delay), func(b *testing.B) {
			for b.Loop() {
				c.DropSession(l.Address())
				firstByte(b, c)
			}
			report(b)
		})
		b.Run(fmt.Sprintf("WarmSession/delay=%v", delay), func(b *testing.B) {
			for b.Loop() {
				firstByte(b, c)
			}
			report(b)
		})
		c.Close()
	}
}

// serveFixed answers every connection's first line with 1 KiB.
func serveFixed(l net.Listener) {
	answer := make([]byte, 1024)
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			var req [4]byte
			if _, err := io.ReadFull(conn, req[:]); err != nil {
				return
			}
			conn.Write(answer)
			io.Copy(io.Discard, conn)
		}()
	}
}

// delayLinks puts a delaying UDP forwarder in front of every relay's
// QUIC address and makes the directory name only the forwarder.
func delayLinks(tb testing.TB, tn *testNet, delay time.Duration) {
	for _, r := range tn.relays {
		if err := tn.net.Delay(r.Relay, relaynet.Link{Delay: delay}); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkBulk measures a download through a hidden service on loopback
// over a warm session.
//
//	go test -run XXX -bench Bulk -benchtime 5x ./hidden
func BenchmarkBulk(b *testing.B) {
	const size = 16 << 20
	tn := newTestNet(b, 6)
	l, _ := tn.listen(newKey(b))
	go func() {
		payload := make([]byte, size)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.Write(payload)
			}()
		}
	}()
	n, _ := tn.endpoint()
	c, err := hidden.NewConnector(n)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(size)
	for b.Loop() {
		conn, err := c.Dial(context.Background(), "tcp", l.Address()+":80")
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, conn); err != nil || n != size {
			b.Fatalf("%d bytes, %v", n, err)
		}
		conn.Close()
	}
}
