package client_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
)

// echoBulk sends n bytes to an echo server through c and reads them back.
func echoBulk(t *testing.T, c net.Conn, n int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, n))
		errc <- err
	}()
	if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// A circuit measures what the exit delivers on it, and the manager takes
// a capacity sample of each circuit that carried enough when it closes.
func TestCircuitCapacitySample(t *testing.T) {
	n := newExitNet(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := n.Build(ctx, 0, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port, _ := strconv.Atoi(n.echo)
	s, err := c.Dial(ctx, "127.0.0.1", uint16(port))
	if err != nil {
		t.Fatal(err)
	}
	const size = 2 << 20
	echoBulk(t, s, size)
	s.Close()
	if bytes, active := client.Delivered(c); bytes < size || active <= 0 {
		t.Fatalf("delivered %d bytes in %v, want %d in some time", bytes, active, size)
	}

	m := n.manager(client.Config{IdleTimeout: 10 * time.Millisecond, Tick: 10 * time.Millisecond})
	conn, err := m.Dial(ctx, "tcp", net.JoinHostPort("127.0.0.1", n.echo))
	if err != nil {
		t.Fatal(err)
	}
	echoBulk(t, conn, size)
	conn.Close()
	for client.CapacitySamples(m) == 0 { // the idle circuit closes at a tick
		select {
		case <-ctx.Done():
			t.Fatal("no capacity sample from a closed circuit that carried 2 MiB")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
