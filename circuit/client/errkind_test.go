package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/errkind"
	"github.com/obolnet/obol/circuit/socks"
)

// dialKind dials address with m under its own isolation key and returns
// the kind of the failure: Dial's own, or, since Dial returns before the
// exit answers, that of the first read.
func dialKind(t *testing.T, ctx context.Context, m *client.CircuitManager, network, address string) (errkind.Kind, error) {
	t.Helper()
	conn, err := m.DialIsolated(ctx, client.NewIsolationKey(network+" "+address), network, address)
	if err == nil {
		conn.SetDeadline(time.Now().Add(2 * time.Minute)) // a safety net; the exit answers long before
		conn.Write([]byte("hello?"))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatalf("dial %s %s: no failure", network, address)
	}
	return errkind.Of(err), err
}

// Every failure Dial meets tells the caller what to do with it: the
// request's own faults, the exit's answers, the circuits' failures and
// the manager's state each carry their kind, whichever way the failure
// arrives (Dial's error, the first read's, DialStream's).
func TestDialErrorKinds(t *testing.T) {
	n := newExitNet(t, 3)
	m := n.manager(client.Config{})
	ctx := context.Background()
	refused := closedPort(t)

	tests := []struct {
		name, network, address string
		want                   errkind.Kind
	}{
		{"network not tcp", "udp", "127.0.0.1:" + n.echo, errkind.Unsupported},
		{"no port", "tcp", "example.com", errkind.Malformed},
		{"port 0", "tcp", "example.com:0", errkind.Malformed},
		{"port out of range", "tcp", "example.com:65536", errkind.Malformed},
		{"no host", "tcp", ":80", errkind.Malformed},
		{"host with a space", "tcp", "a b.example:80", errkind.Malformed},
		{"host too long", "tcp", strings.Repeat("a", 256) + ":80", errkind.Malformed},
		{"hidden-service name", "tcp", hsNames[0] + ":80", errkind.NotAllowed},
		{"hidden-service name, other spelling", "tcp", hsNames[len(hsNames)-1] + ":80", errkind.NotAllowed},
		{"connect refused (END connect-refused)", "tcp", "127.0.0.1:" + refused, errkind.Refused},
		{"reserved address (END exit-policy)", "tcp", "10.1.2.3:80", errkind.NotAllowed},
		{"name that cannot resolve (END resolve-failed)", "tcp", "a..b.example:80", errkind.NotFound},
	}
	for _, tt := range tests {
		if got, err := dialKind(t, ctx, m, tt.network, tt.address); got != tt.want {
			t.Errorf("%s: kind %v (%v), want %v", tt.name, got, err, tt.want)
		}
	}

	// The exit's answer keeps its cause: the END reason is still there.
	_, err := dialKind(t, ctx, m, "tcp", "127.0.0.1:"+refused)
	var ee *client.EndError
	if !errors.As(err, &ee) || ee.Reason != circuit.EndConnectRefused {
		t.Errorf("refusal %v lost its END reason", err)
	}

	// A request that waits for the exit gets the same kinds from
	// DialStream itself, and the proxy's reply follows from them.
	port, _ := strconv.Atoi(refused)
	_, err = m.DialStream(ctx, socks.Request{Target: socks.Target{IP: netip.MustParseAddr("127.0.0.1"), Port: uint16(port)}})
	if errkind.Of(err) != errkind.Refused || socks.ReplyCode5(err) != socks.Rep5ConnRefused {
		t.Errorf("DialStream to a closed port: %v (%v)", err, errkind.Of(err))
	}
	_, err = m.DialStream(ctx, socks.Request{Target: socks.Target{IP: netip.MustParseAddr("10.1.2.3"), Port: 80}})
	if errkind.Of(err) != errkind.NotAllowed || socks.ReplyCode5(err) != socks.Rep5NotAllowed {
		t.Errorf("DialStream to a reserved address: %v (%v)", err, errkind.Of(err))
	}

	// The caller's deadline passes before a circuit is built (cancelling
	// ctx does not end an optimistic stream's opening; its deadline does).
	dead, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if got, err := dialKind(t, dead, m, "tcp", "127.0.0.1:"+n.echo); got != errkind.Timeout || !errors.Is(err, client.ErrBuildFailed) {
		t.Errorf("passed deadline: kind %v (%v), want timeout wrapping the failed build", got, err)
	}

	// No path meets the rules yet: more hops than relays.
	if got, err := dialKind(t, ctx, n.manager(client.Config{Hops: 5}), "tcp", "127.0.0.1:"+n.echo); got != errkind.Retry || !errors.Is(err, client.ErrNoPath) {
		t.Errorf("no path: kind %v (%v), want retry", got, err)
	}

	// Every build fails: another attempt builds new circuits.
	for i := range n.Relays {
		n.setFault(i, 1)
	}
	if got, err := dialKind(t, ctx, m, "tcp", "127.0.0.1:"+n.echo); got != errkind.OtherPath {
		t.Errorf("builds failing: kind %v (%v), want other path", got, err)
	}
}

// A closed manager says so.
func TestDialErrorKindClosed(t *testing.T) {
	n := newExitNet(t, 3)
	m, err := client.NewCircuitManager(client.Config{Links: n.links, Directory: n.Dir, AllowSameSubnet: true, Prebuilt: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	cancel()
	<-done
	got, err := dialKind(t, context.Background(), m, "tcp", "127.0.0.1:"+n.echo)
	if got != errkind.Closed || !errors.Is(err, client.ErrClosed) {
		t.Errorf("closed manager: kind %v (%v), want closed", got, err)
	}
}

// Every END reason has the kind of what the caller can do about it.
func TestEndErrorKinds(t *testing.T) {
	want := map[circuit.EndReason]errkind.Kind{
		circuit.EndResolveFailed:  errkind.NotFound,
		circuit.EndConnectRefused: errkind.Refused,
		circuit.EndExitPolicy:     errkind.NotAllowed,
		circuit.EndTimeout:        errkind.Timeout,
		circuit.EndNoRoute:        errkind.NoRoute,
	}
	for r := circuit.EndMisc; r <= circuit.EndPayment; r++ {
		w, ok := want[r]
		if !ok {
			w = errkind.OtherPath // the exit or circuit failed, not the destination
		}
		if got := errkind.Of(&client.EndError{Reason: r}); got != w {
			t.Errorf("END %v: kind %v, want %v", r, got, w)
		}
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// Once a stream is open, its reads and writes fail with kinds too: a
// deadline is a timeout, a stream closed here is closed, and a circuit
// lost under the stream (here its middle relay goes away) asks for
// another path.
func TestStreamErrorKindsAfterOpen(t *testing.T) {
	n := newExitNet(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := n.Build(ctx, 0, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port, _ := strconv.Atoi(n.echo)
	open := func() *client.Stream {
		s, err := c.Dial(ctx, "127.0.0.1", uint16(port))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		return s
	}

	s := open()
	s.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := s.Read(make([]byte, 1)); errkind.Of(err) != errkind.Timeout {
		t.Errorf("read past its deadline: kind %v (%v), want timeout", errkind.Of(err), err)
	}
	s.Close()
	if _, err := s.Read(make([]byte, 1)); errkind.Of(err) != errkind.Closed {
		t.Errorf("read of a closed stream: kind %v (%v), want closed", errkind.Of(err), err)
	}
	if _, err := s.Write([]byte("x")); errkind.Of(err) != errkind.Closed {
		t.Errorf("write to a closed stream: kind %v (%v), want closed", errkind.Of(err), err)
	}

	s = open()
	n.Relays[1].Host.Close() // the middle relay goes away, and the circuit with it
	if _, err := s.Read(make([]byte, 1)); errkind.Of(err) != errkind.OtherPath || errors.Is(err, io.EOF) {
		t.Errorf("read on a lost circuit: kind %v (%v), want other path", errkind.Of(err), err)
	}
	if _, err := s.Write([]byte("x")); errkind.Of(err) != errkind.OtherPath {
		t.Errorf("write on a lost circuit: kind %v (%v), want other path", errkind.Of(err), err)
	}
}

// DialConnected fails at the dial, with the kind Dial's first read would
// report, and returns a connection only once the exit has connected: a
// request written to it has left, and one whose dial failed never did.
func TestDialConnectedFailsAtTheDial(t *testing.T) {
	n := newExitNet(t, 3)
	m := n.manager(client.Config{})
	ctx := client.WithIsolation(context.Background(), client.NewIsolationKey("connected"))

	conn, err := m.DialConnected(ctx, "tcp", "127.0.0.1:"+n.echo)
	if err != nil {
		t.Fatalf("DialConnected to the echo server: %v", err)
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo through DialConnected: %q, %v", got, err)
	}
	conn.Close()

	refused := closedPort(t)
	if conn, err := m.DialConnected(ctx, "tcp", "127.0.0.1:"+refused); conn != nil || errkind.Of(err) != errkind.Refused {
		t.Errorf("DialConnected to a closed port: %v, kind %v; want no connection and the refusal", err, errkind.Of(err))
	}
	for i := range n.Relays {
		n.setFault(i, 1) // every build fails
	}
	ctx = client.WithIsolation(ctx, client.NewIsolationKey("connected, no circuit"))
	if conn, err := m.DialConnected(ctx, "tcp", "127.0.0.1:"+n.echo); conn != nil || errkind.Of(err) != errkind.OtherPath {
		t.Errorf("DialConnected with every build failing: %v, kind %v; want no connection, other path", err, errkind.Of(err))
	}
	// Dial, optimistic, hands out a connection before any circuit exists.
	if conn, err := m.Dial(ctx, "tcp", "127.0.0.1:"+n.echo); err != nil {
		t.Errorf("optimistic Dial failed at once: %v", err)
	} else {
		conn.Close()
	}
}
