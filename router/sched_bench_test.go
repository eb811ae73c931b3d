package router_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
)

// BenchmarkBuildUnderBulk measures building (and closing) a 3-hop circuit
// over the channels of another circuit of the same client, through the
// same relays, while that circuit downloads as fast as it can, against
// the same build with the channels quiet. With circuits scheduled by
// recent activity the new circuit's CREATE and CREATED do not wait behind
// the bulk circuit's cells:
//
//	go test -run XXX -bench BuildUnderBulk -benchtime 100x ./router
func BenchmarkBuildUnderBulk(b *testing.B) {
	port, _ := dataServer(b)
	for _, load := range []string{"quiet", "bulk"} {
		b.Run(load, func(b *testing.B) {
			tn := newTestNet(b, 3, nil)
			path := tn.Path(0, 1, 2)
			if load == "bulk" {
				busy := tn.build(b, 0, 1, 2)
				s, err := busy.Dial(context.Background(), "127.0.0.1", port)
				if err != nil {
					b.Fatal(err)
				}
				fmt.Fprintf(s, "GET /bytes/%d HTTP/1.0\r\nHost: x\r\n\r\n", 1<<40)
				done := make(chan struct{})
				go func() { defer close(done); io.Copy(io.Discard, s) }()
				b.Cleanup(func() { s.Close(); <-done })
			}
			build := func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				c, err := client.Build(ctx, tn.client, path)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			build() // the channels are open
			for b.Loop() {
				build()
			}
		})
	}
}
