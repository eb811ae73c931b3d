package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/socks"
)

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// httpGet sends a GET over conn and returns the body.
func httpGet(t testing.TB, conn net.Conn, path string) string {
	t.Helper()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return string(b)
}

func usedCircuits(m *client.CircuitManager) []client.CircuitInfo {
	var out []client.CircuitInfo
	for _, c := range m.Circuits() {
		if c.Used {
			out = append(out, c)
		}
	}
	return out
}

func cleanCircuits(m *client.CircuitManager) int {
	return len(m.Circuits()) - len(usedCircuits(m))
}

func exitOf(c client.CircuitInfo) peer.ID { return c.Hops[len(c.Hops)-1] }

// Circuits are prebuilt; the first request takes one; a second request of
// the same key reuses it; another key gets another circuit with another
// exit; every path keeps the rules (distinct relays and /16s, the first hop
// a guard).
func TestManagerPrebuildReuseIsolation(t *testing.T) {
	cn := newCircuitNet(t, 6, circuitNetOptions{})
	web := httpServer(t)
	m := newTestManager(t, cn.descriptors(), client.Config{Prebuilt: 2})
	waitFor(t, "two prebuilt circuits", func() bool { return cleanCircuits(m) >= 2 })

	alice, bob := client.NewIsolationKey("alice"), client.NewIsolationKey("bob")
	ctx := context.Background()
	a1, err := m.DialIsolated(ctx, alice, "tcp", web)
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	if got := httpGet(t, a1, "/hello"); got != "hello through obol\n" {
		t.Fatalf("body %q", got)
	}
	used := usedCircuits(m)
	if len(used) != 1 || used[0].Age < time.Millisecond {
		t.Fatalf("first request did not take a prebuilt circuit: %+v", used)
	}
	a2, err := m.Dial(client.WithIsolation(ctx, alice), "tcp", web)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if used := usedCircuits(m); len(used) != 1 || used[0].Streams != 2 {
		t.Fatalf("same key did not reuse its circuit: %+v", used)
	}
	b1, err := m.DialIsolated(ctx, bob, "tcp", web)
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	used = usedCircuits(m)
	if len(used) != 2 {
		t.Fatalf("two keys share a circuit: %+v", used)
	}
	if exitOf(used[0]) == exitOf(used[1]) {
		t.Fatal("two keys got the same exit although six exits exist")
	}
	for _, c := range m.Circuits() {
		checkRealPath(t, m, c)
	}
	waitFor(t, "the prebuilt circuits to be replaced", func() bool { return cleanCircuits(m) >= 2 })
}

func checkRealPath(t *testing.T, m *client.CircuitManager, c client.CircuitInfo) {
	t.Helper()
	if len(c.Hops) != 3 {
		t.Fatalf("%d hops, want 3", len(c.Hops))
	}
	if !slices.Contains(m.Guards(), c.Hops[0]) {
		t.Fatal("first hop not a guard")
	}
	seen := map[peer.ID]bool{}
	for _, h := range c.Hops {
		if seen[h] {
			t.Fatal("relay twice in a path")
		}
		seen[h] = true
	}
}

// With relays dead (still in the cache), requests succeed on other paths,
// and no new circuit goes through a dead relay once it is known to fail.
func TestManagerRetriesAroundDeadRelays(t *testing.T) {
	cn := newCircuitNet(t, 7, circuitNetOptions{})
	web := httpServer(t)
	m := newTestManager(t, cn.descriptors(), client.Config{Prebuilt: -1, BuildTimeout: 2 * time.Second, BuildAttempts: 8})
	// Learn the guards, then kill one guard and two other relays.
	c, err := m.DialIsolated(context.Background(), client.NewIsolationKey("warm-up"), "tcp", web)
	if err != nil {
		t.Fatal(err)
	}
	httpGet(t, c, "/hello") // Dial returns before the circuit is built
	c.Close()
	guards := m.Guards()
	dead := map[peer.ID]bool{guards[0]: true}
	for _, r := range cn.relays {
		if len(dead) < 3 && !slices.Contains(guards, r.id()) {
			dead[r.id()] = true
		}
	}
	for _, r := range cn.relays {
		if dead[r.id()] {
			r.stop()
		}
	}
	for i := range 12 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, err := m.DialIsolated(ctx, client.NewIsolationKey(fmt.Sprint("user", i)), "tcp", web)
		cancel()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := httpGet(t, conn, "/hello"); !strings.HasPrefix(got, "hello") {
			t.Fatalf("request %d: body %q", i, got)
		}
		conn.Close()
	}
	for _, c := range m.Circuits() {
		for _, h := range c.Hops {
			if dead[h] {
				t.Fatal("an open circuit goes through a dead relay")
			}
		}
	}
}

// Closing the SOCKS client's connection closes its stream; a used
// circuit without streams closes after the idle timeout.
func TestManagerStreamsCloseWithConn(t *testing.T) {
	cn := newCircuitNet(t, 4, circuitNetOptions{})
	web := httpServer(t)
	m := newTestManager(t, cn.descriptors(), client.Config{Prebuilt: -1, IdleTimeout: 300 * time.Millisecond})
	addr := serveSOCKS(t, m)
	conn := socks5Connect(t, addr, web, "carol")
	waitFor(t, "a stream", func() bool { u := usedCircuits(m); return len(u) == 1 && u[0].Streams == 1 })
	conn.Close()
	waitFor(t, "the stream to close", func() bool { u := usedCircuits(m); return len(u) == 0 || u[0].Streams == 0 })
	waitFor(t, "the idle circuit to close", func() bool { return len(m.Circuits()) == 0 })
}

// serveSOCKS serves a SOCKS server over m on loopback until the test ends.
func serveSOCKS(t testing.TB, m *client.CircuitManager) string {
	t.Helper()
	srv, err := socks.NewServer(socks.Config{Dialer: m})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// socks5Connect opens a SOCKS5 connection to target with user as the
// username (isolation).
func socks5Connect(t testing.TB, proxyAddr, target, user string) net.Conn {
	t.Helper()
	d, err := socks5Dialer(proxyAddr, user)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := d.Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// One circuit carries many streams in turn: streams that end while their
// exit is reading do not use up the circuit's window (a circuit reused for
// ten minutes by a browser opens hundreds).
func TestManagerManyStreamsOnOneCircuit(t *testing.T) {
	cn := newCircuitNet(t, 3, circuitNetOptions{})
	web := httpServer(t)
	m := newTestManager(t, cn.descriptors(), client.Config{Prebuilt: -1})
	key := client.NewIsolationKey("many")
	for i := range 1500 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := m.DialIsolated(ctx, key, "tcp", web)
		cancel()
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if got := httpGet(t, conn, "/bytes/1024"); len(got) != 1024 {
			t.Fatalf("stream %d: %d bytes", i, len(got))
		}
		conn.Close()
	}
	if n := len(m.Circuits()); n != 1 {
		t.Fatalf("%d circuits, want the one reused", n)
	}
}

// Two SOCKS usernames get two circuits with different exits when enough
// exits exist; a third connection of the first user shares its circuit.
func TestManagerSOCKSUsernamesIsolate(t *testing.T) {
	cn := newCircuitNet(t, 6, circuitNetOptions{})
	web := httpServer(t)
	m := newTestManager(t, cn.descriptors(), client.Config{})
	addr := serveSOCKS(t, m)
	a := socks5Connect(t, addr, web, "alice")
	defer a.Close()
	b := socks5Connect(t, addr, web, "bob")
	defer b.Close()
	a2 := socks5Connect(t, addr, web, "alice")
	defer a2.Close()
	for _, c := range []net.Conn{a, b, a2} {
		if got := httpGet(t, c, "/hello"); got != "hello through obol\n" {
			t.Fatalf("body %q", got)
		}
	}
	used := usedCircuits(m)
	if len(used) != 2 {
		t.Fatalf("%d used circuits, want 2", len(used))
	}
	if exitOf(used[0]) == exitOf(used[1]) {
		t.Fatal("two usernames share an exit although six exits exist")
	}
	if used[0].Streams+used[1].Streams != 3 || (used[0].Streams != 2 && used[1].Streams != 2) {
		t.Fatalf("streams per circuit %d and %d, want 2 and 1", used[0].Streams, used[1].Streams)
	}
}

// A client whose creates carry a clock 10 minutes off builds nothing: the
// relays refuse them (clock-skew), and what the application sees names
// the clock, not a network failure.
func TestManagerCreateClockOff(t *testing.T) {
	cn := newCircuitNet(t, 4, circuitNetOptions{})
	web := httpServer(t)
	m := newTestManager(t, cn.descriptors(), client.Config{Prebuilt: -1, BuildTimeout: 5 * time.Second, BuildAttempts: 2,
		CreateClock: func() time.Time { return time.Now().Add(-10 * time.Minute) }})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := m.DialIsolated(ctx, client.NewIsolationKey("late"), "tcp", web)
	if err == nil {
		// Dial may return before the circuit is built; the read fails.
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "GET /hello HTTP/1.0\r\n\r\n")
		_, err = io.ReadAll(conn)
	}
	if err == nil || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("a request with the clock 10 minutes off: %v", err)
	}
	t.Log(err)
}
