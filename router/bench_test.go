package router_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/internal/relaynet"
)

const benchSize = 32 << 20

// BenchmarkBulk compares 3-hop circuit throughput with a plain chain of
// three libp2p hosts that copy bytes, over the same transport, in one run:
//
//	go test -run XXX -bench Bulk -benchtime 5x ./router
func BenchmarkBulk(b *testing.B) {
	port, _ := dataServer(b)
	b.Run("Circuit3Hop", func(b *testing.B) {
		tn := newTestNet(b, 3, nil)
		c := tn.build(b, 0, 1, 2)
		b.SetBytes(benchSize)
		defer reportCPU(b, benchSize)()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			s, err := c.Dial(ctx, "127.0.0.1", port)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := get(s, benchSize); err != nil {
				b.Fatal(err)
			}
			s.Close()
			cancel()
		}
	})
	b.Run("PlainChain3Hop", func(b *testing.B) {
		first, clientHost := plainChain(b, 3, port)
		b.SetBytes(benchSize)
		defer reportCPU(b, benchSize)()
		for b.Loop() {
			s, err := clientHost.NewStream(context.Background(), first, chainProto)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := get(streamConn{s}, benchSize); err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
}

// reportCPU reports the process's CPU time (user + system) per byte moved,
// a figure other load on the machine distorts far less than throughput.
func reportCPU(b *testing.B, perOp int) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/float64(perOp), "cpu-ns/B")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const chainProto = protocol.ID("/obol-bench/chain/1")

// plainChain starts n hosts that each forward a stream to the next host
// and the last to the TCP server, copying bytes both ways — the baseline
// a circuit is measured against.
func plainChain(tb testing.TB, n int, port uint16) (peer.ID, host.Host) {
	hosts := make([]host.Host, n)
	for i := range hosts {
		hosts[i] = newHost(tb)
		tb.Cleanup(func() { hosts[i].Close() })
	}
	for i, h := range hosts {
		h.SetStreamHandler(chainProto, func(s network.Stream) {
			var next io.ReadWriteCloser
			var err error
			if i == n-1 {
				next, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
			} else {
				h.Peerstore().AddAddrs(hosts[i+1].ID(), hosts[i+1].Addrs(), time.Hour)
				var ns network.Stream
				ns, err = h.NewStream(context.Background(), hosts[i+1].ID(), chainProto)
				next = ns
			}
			if err != nil {
				s.Reset()
				return
			}
			go func() { io.Copy(next, s); closeWrite(next) }()
			io.Copy(s, next)
			s.Close()
			next.Close()
		})
	}
	c := newHost(tb)
	tb.Cleanup(func() { c.Close() })
	c.Peerstore().AddAddrs(hosts[0].ID(), hosts[0].Addrs(), time.Hour)
	return hosts[0].ID(), c
}

func closeWrite(c io.Closer) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// streamConn makes a libp2p stream usable where get wants a net.Conn.
type streamConn struct{ network.Stream }

func (streamConn) LocalAddr() net.Addr  { return nil }
func (streamConn) RemoteAddr() net.Addr { return nil }

// BenchmarkBuild measures building (and closing) a 3-hop circuit over
// open channels, on loopback and with a 10 ms one-way delay on every link
// (a user-space forwarder in front of every relay's QUIC address):
//
//	go test -run XXX -bench Build -benchtime 50x ./router
func BenchmarkBuild(b *testing.B) {
	for _, delay := range []time.Duration{0, 10 * time.Millisecond} {
		b.Run(fmt.Sprintf("3Hop/delay=%v", delay), func(b *testing.B) {
			tn := newTestNet(b, 3, nil)
			if delay > 0 {
				delayLinks(b, tn, delay)
			}
			path := tn.Path(0, 1, 2)
			build := func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				c, err := client.Build(ctx, tn.client, path)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			build() // open the channels
			start := cpuTime()
			for b.Loop() {
				build()
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/build")
			if delay > 0 {
				b.ReportMetric(float64(6*delay)/float64(time.Millisecond), "path-RTT-ms")
			}
		})
	}
}

// BenchmarkFirstByte measures a fresh 3-hop circuit's time to the first
// byte of a 1 KiB answer: building, then dialling, against BuildDial with
// the request in the build's flight, on loopback and with 10 ms one-way
// per link. A direct TCP GET is the baseline.
//
//	go test -run XXX -bench FirstByte -benchtime 30x ./router
func BenchmarkFirstByte(b *testing.B) {
	port, _ := dataServer(b)
	req := []byte("GET /bytes/1024 HTTP/1.0\r\nHost: x\r\n\r\n")
	firstByte := func(b *testing.B, conn io.Reader) {
		var one [1]byte
		if _, err := io.ReadFull(conn, one[:]); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Direct", func(b *testing.B) {
		for b.Loop() {
			conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
			if err != nil {
				b.Fatal(err)
			}
			conn.Write(req)
			firstByte(b, conn)
			conn.Close()
		}
	})
	for _, delay := range []time.Duration{0, 10 * time.Millisecond} {
		tn := newTestNet(b, 3, nil)
		if delay > 0 {
			delayLinks(b, tn, delay)
		}
		path := tn.Path(0, 1, 2)
		warm, err := client.Build(context.Background(), tn.client, path)
		if err != nil {
			b.Fatal(err)
		}
		warm.Close() // channels open
		b.Run(fmt.Sprintf("BuildThenDial/delay=%v", delay), func(b *testing.B) {
			for b.Loop() {
				ctx := context.Background()
				c, err := client.Build(ctx, tn.client, path)
				if err != nil {
					b.Fatal(err)
				}
				s, err := c.Dial(ctx, "127.0.0.1", port)
				if err != nil {
					b.Fatal(err)
				}
				s.Write(req)
				firstByte(b, s)
				c.Close()
			}
		})
		b.Run(fmt.Sprintf("BuildDial/delay=%v", delay), func(b *testing.B) {
			for b.Loop() {
				c, s, err := client.BuildDial(context.Background(), tn.client, path, "127.0.0.1", port, req)
				if err != nil {
					b.Fatal(err)
				}
				firstByte(b, s)
				c.Close()
			}
			if delay > 0 {
				b.ReportMetric(float64(6*delay)/float64(time.Millisecond), "path-RTT-ms")
			}
		})
	}
}

// delayLinks puts a delaying UDP forwarder in front of each relay's QUIC
// address and makes the client and the relays reach it only through that.
func delayLinks(tb testing.TB, tn *testNet, delay time.Duration) {
	for _, r := range tn.Relays {
		if err := tn.Delay(r, relaynet.Link{Delay: delay}); err != nil {
			tb.Fatal(err)
		}
	}
}
