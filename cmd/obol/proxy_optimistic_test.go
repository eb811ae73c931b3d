package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/errkind"
)

// The Go API's Dial returns before CONNECTED, on a circuit still to be
// built and on one that is ready: client-first and server-first
// protocols both work, more than a build's flight of first bytes arrive
// byte-exact, and a refusal is reported by the first read.
func TestManagerOptimisticDial(t *testing.T) {
	cn := newCircuitNet(t, 3, circuitNetOptions{})
	web := httpServer(t)
	m := newTestManager(t, cn.descriptors(), client.Config{Prebuilt: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := client.NewIsolationKey("optimistic")

	for i, what := range []string{"new circuit", "ready circuit"} {
		conn, err := m.DialIsolated(ctx, key, "tcp", web)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := httpGet(t, conn, "/hello"); got != "hello through obol\n" {
			t.Fatalf("%s: %q", what, got)
		}
		conn.Close()
		if n := len(m.Circuits()); n != 1 {
			t.Fatalf("after request %d: %d circuits, want 1", i, n)
		}
	}

	echo := echoServer(t)
	payload := make([]byte, 3*client.MaxEarlyData+17)
	rand.NewChaCha8([32]byte{2}).Read(payload)
	conn, err := m.DialIsolated(ctx, client.NewIsolationKey("big first write"), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	go conn.Write(payload)
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo of a first write larger than a build's flight differs (%v)", err)
	}
	conn.Close()

	banner := bannerServer(t, "SSH-2.0-test\r\n")
	conn, err = m.DialIsolated(ctx, client.NewIsolationKey("server first"), "tcp", banner)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if b := make([]byte, 14); !readFullOK(conn, b) || string(b) != "SSH-2.0-test\r\n" {
		t.Fatalf("server-first protocol: banner %q", b)
	}
	conn.Close()

	for _, k := range []string{"optimistic", "refused on a new circuit"} {
		conn, err = m.DialIsolated(ctx, client.NewIsolationKey(k), "tcp", "127.0.0.1:"+strconv.Itoa(closedPort(t)))
		if err != nil {
			t.Fatalf("%s: Dial failed before the exit answered: %v", k, err)
		}
		conn.Write([]byte("hello?"))
		_, err = conn.Read(make([]byte, 1))
		if errkind.Of(err) != errkind.Refused {
			t.Fatalf("%s: read on a refused stream: %v (%v), want a refusal", k, err, errkind.Of(err))
		}
		conn.Close()
	}
}

func readFullOK(r io.Reader, b []byte) bool { _, err := io.ReadFull(r, b); return err == nil }

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// bannerServer greets every connection with banner before reading.
func bannerServer(t *testing.T, banner string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.WriteString(c, banner); io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
