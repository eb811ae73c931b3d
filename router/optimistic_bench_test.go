package router_test

import (
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/obolnet/obol/circuit/circuittest"
	"github.com/obolnet/obol/circuit/socks"
)

// BenchmarkSOCKSFirstByte measures what an application sees through the
// SOCKS proxy on an existing 3-hop circuit: from its connect to the proxy
// to the first byte of a 1 KiB answer, with the Go SOCKS5 client, 10 ms
// one-way on every link and on the exit's link to the server (a path
// round trip of 80 ms). The proxy either replies at once and the request
// follows the BEGIN (optimistic), or replies after CONNECTED (wait).
//
//	go test -run XXX -bench SOCKSFirstByte -benchtime 20x ./router
func BenchmarkSOCKSFirstByte(b *testing.B) {
	const delay = 10 * time.Millisecond
	port, _ := dataServer(b)
	srv, err := circuittest.NewDelayTCP("127.0.0.1:"+strconv.Itoa(int(port)), delay)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	tn := newTestNet(b, 3, nil)
	delayLinks(b, tn, delay)
	c := tn.build(b, 0, 1, 2)
	target := srv.Addr().String()
	for _, mode := range []struct {
		name string
		off  bool
	}{{"wait", true}, {"optimistic", false}} {
		addr := serveSOCKS(b, socks.Config{Dialer: circuitDialer(c), DisableOptimisticData: mode.off})
		d, err := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/delay=%v", mode.name, delay), func(b *testing.B) {
			for b.Loop() {
				conn, err := d.Dial("tcp", target)
				if err != nil {
					b.Fatal(err)
				}
				io.WriteString(conn, "GET /bytes/1024 HTTP/1.0\r\nHost: x\r\n\r\n")
				if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
					b.Fatal(err)
				}
				conn.Close()
			}
			b.ReportMetric(float64(8*delay)/float64(time.Millisecond), "path-RTT-ms")
		})
	}
}
