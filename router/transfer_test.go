package router_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/circuittest"
	"github.com/obolnet/obol/circuit/client"
)

// dataServer serves /bytes/N: N pseudo-random bytes, the same every time.
func dataServer(t testing.TB) (port uint16, sum func(n int) [32]byte) {
	return circuittest.StartDataServer(t)
}

// get fetches /bytes/n over conn with HTTP/1.0 and returns the body hash.
func get(conn net.Conn, n int) ([32]byte, error) { return circuittest.FetchBytes(conn, n, nil) }

// 50 MiB through 1-, 3- and 5-hop circuits arrive byte for byte. Under
// the race detector the 3- and 5-hop circuits carry 16 MiB, still about
// 13,000 cells and 270 circuit SENDMEs through every relay.
func TestBulkTransferExact(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk transfer")
	}
	port, sum := dataServer(t)
	tn := newTestNet(t, 5, nil)
	for _, hops := range [][]int{{0}, {0, 1, 2}, {0, 1, 2, 3, 4}} {
		size := 50 << 20
		if raceEnabled && len(hops) > 1 {
			size = 16 << 20
		}
		want := sum(size)
		t.Run(fmt.Sprintf("%d-hop", len(hops)), func(t *testing.T) {
			c := tn.build(t, hops...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			s, err := c.Dial(ctx, "127.0.0.1", port)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			start := time.Now()
			got, err := get(s, size)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatal("SHA-256 of the body differs")
			}
			t.Logf("%d hops: %d MiB in %v", len(hops), size>>20, time.Since(start).Round(time.Millisecond))
		})
	}
}

// Many streams on one circuit, and many circuits on one channel.
func TestManyStreamsAndCircuits(t *testing.T) {
	port, sum := dataServer(t)
	tn := newTestNet(t, 3, nil)
	const size = 256 << 10
	want := sum(size)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 8 { // circuits, all over the client's one channel to relay 0
		c := tn.build(t, 0, 1, 2)
		for range 8 { // streams per circuit
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				s, err := c.Dial(ctx, "127.0.0.1", port)
				if err != nil {
					errs <- err
					return
				}
				defer s.Close()
				got, err := get(s, size)
				if err == nil && got != want {
					err = fmt.Errorf("body differs")
				}
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := tn.client.Channels(); n != 1 {
		t.Fatalf("client has %d channels, want 1", n)
	}
}

// BuildDial sends the build, the BEGIN and the request in one flight.
func TestBuildDialOneFlight(t *testing.T) {
	port, sum := dataServer(t)
	tn := newTestNet(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := []byte("GET /bytes/300000 HTTP/1.0\r\nHost: x\r\n\r\n")
	c, s, err := client.BuildDial(ctx, tn.client, tn.Path(0, 1, 2), "127.0.0.1", port, req)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := http.ReadResponse(bufio.NewReader(s), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	io.Copy(h, resp.Body)
	if [32]byte(h.Sum(nil)) != sum(300000) {
		t.Fatal("body differs")
	}
	// A refused first stream fails BuildDial with the exit's reason.
	_, _, err = client.BuildDial(ctx, tn.client, tn.Path(0, 1, 2), "127.0.0.1", 1, nil)
	if endReason(err) != circuit.EndConnectRefused {
		t.Fatalf("got %v, want connect-refused", err)
	}
}
