package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
)

// Benchmarks of the proxy on loopback, 3 hops, against a direct GET in the
// same run:
//
//	go test ./cmd/obol -run '^$' -bench Proxy -benchtime 200x
//
// ttfb-ms is the time from the start of the connection (the SOCKS
// handshake included) to the first byte of the response.

func BenchmarkProxyTTFB(b *testing.B) {
	web := httpServer(b)
	cn := newCircuitNet(b, 5, circuitNetOptions{})
	direct := func(string) (net.Conn, error) { return net.Dial("tcp", web) }
	b.Run("direct", func(b *testing.B) { benchTTFB(b, direct, nil) })

	// Requests run back to back, as the direct ones do, each on a circuit
	// of its own that was prebuilt; between batches the timer stops until
	// the manager has prebuilt a whole batch again.
	const batch = 32
	pre := newTestManager(b, cn.descriptors(), client.Config{Prebuilt: batch, IdleTimeout: time.Minute, Tick: time.Second})
	preAddr := serveSOCKS(b, pre)
	b.Run("prebuilt", func(b *testing.B) {
		benchTTFB(b, socksVia(preAddr, web), func(i int) {
			if i%batch == 0 {
				waitFor(b, "a batch of prebuilt circuits", func() bool { return cleanCircuits(pre) >= batch })
			}
		})
	})
	b.Run("reused", func(b *testing.B) {
		benchTTFB(b, func(string) (net.Conn, error) { return socksVia(preAddr, web)("same-user") }, nil)
	})

	fresh := newTestManager(b, cn.descriptors(), client.Config{Prebuilt: -1, IdleTimeout: 100 * time.Millisecond})
	freshAddr := serveSOCKS(b, fresh)
	b.Run("fresh", func(b *testing.B) { benchTTFB(b, socksVia(freshAddr, web), nil) })
}

// socksVia returns a dial function to target through the SOCKS proxy at
// addr that isolates by the user it is given.
func socksVia(addr, target string) func(user string) (net.Conn, error) {
	return func(user string) (net.Conn, error) {
		d, err := socks5Dialer(addr, user)
		if err != nil {
			return nil, err
		}
		return d.Dial("tcp", target)
	}
}

// benchTTFB times dial → GET /bytes/1024 → first byte; before, if set,
// runs with the timer stopped before request i.
func benchTTFB(b *testing.B, dial func(user string) (net.Conn, error), before func(i int)) {
	var ttfb time.Duration
	for i := range b.N {
		if before != nil {
			b.StopTimer()
			before(i)
			b.StartTimer()
		}
		start := time.Now()
		conn, err := dial(fmt.Sprint("user-", i))
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /bytes/1024 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		br := bufio.NewReader(conn)
		if _, err := br.Peek(1); err != nil {
			b.Fatal(err)
		}
		ttfb += time.Since(start)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conn.Close()
	}
	b.ReportMetric(float64(ttfb.Microseconds())/1000/float64(b.N), "ttfb-ms")
}

// 100 MiB through the proxy against a direct GET.
func BenchmarkProxyBulk(b *testing.B) {
	const size = 100 << 20
	web := httpServer(b)
	cn := newCircuitNet(b, 5, circuitNetOptions{})
	m := newTestManager(b, cn.descriptors(), client.Config{})
	addr := serveSOCKS(b, m)
	get := func(b *testing.B, dial func() (net.Conn, error)) {
		b.SetBytes(size)
		for range b.N {
			conn, err := dial()
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(conn, "GET /bytes/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", size)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil || n != size {
				b.Fatalf("%d bytes: %v", n, err)
			}
			conn.Close()
		}
	}
	b.Run("direct", func(b *testing.B) { get(b, func() (net.Conn, error) { return net.Dial("tcp", web) }) })
	b.Run("proxy", func(b *testing.B) {
		get(b, func() (net.Conn, error) {
			d, err := socks5Dialer(addr, "bulk")
			if err != nil {
				return nil, err
			}
			return d.Dial("tcp", web)
		})
	})
}
