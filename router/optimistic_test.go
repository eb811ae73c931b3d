package router_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/net/proxy"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/socks"
	"github.com/obolnet/obol/router"
)

// exitGate holds the exit's connects until the test lets each one go, so
// that the exit cannot have sent CONNECTED while it is held.
type exitGate struct{ calls chan gatedConnect }

type gatedConnect struct {
	addr    string
	proceed chan error // nil: connect; else fail with it
}

func newExitGate() *exitGate { return &exitGate{calls: make(chan gatedConnect)} }

func (g *exitGate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	call := gatedConnect{addr: addr, proceed: make(chan error, 1)}
	select {
	case g.calls <- call:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case err := <-call.proceed:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// circuitDialer opens the SOCKS server's streams on one circuit, as the
// client manager does on a circuit it has ready.
func circuitDialer(c *client.Circuit) socks.Dialer {
	return socks.DialerFunc(func(ctx context.Context, req socks.Request) (net.Conn, error) {
		host := req.Host
		if req.IP.IsValid() {
			host = req.IP.String()
		}
		if req.Optimistic {
			return c.DialOptimistic(ctx, host, req.Port)
		}
		return c.Dial(ctx, host, req.Port)
	})
}

// serveSOCKS runs a SOCKS server over d on loopback until the test ends.
func serveSOCKS(tb testing.TB, cfg socks.Config) string {
	srv, err := socks.NewServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(context.Background(), ln) }()
	tb.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

func echoListener(t *testing.T) string {
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

// Through a real circuit and a Go SOCKS5 client: the proxy's success reply
// arrives while the exit is still connecting (so before CONNECTED), the
// application's bytes written at once arrive byte-exact, and a stream the
// exit then refuses resets the application's connection.
func TestSOCKSOptimisticOverCircuit(t *testing.T) {
	gate := newExitGate()
	tn := newTestNet(t, 3, func(i int, c *router.Config) { c.Dial = gate.dial })
	c := tn.build(t, 0, 1, 2)
	addr := serveSOCKS(t, socks.Config{Dialer: circuitDialer(c)})
	echo := echoListener(t)
	d, err := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}

	conn, err := d.Dial("tcp", echo) // returns once the success reply is read
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	call := <-gate.calls // the exit is connecting: no CONNECTED can exist yet
	payload := make([]byte, 5000)
	rand.NewChaCha8([32]byte{1}).Read(payload)
	if _, err := conn.Write(payload); err != nil {
		t.Fatal(err)
	}
	call.proceed <- nil
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo through the circuit differs (%v)", err)
	}

	refused, err := d.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	call = <-gate.calls
	refused.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	call.proceed <- syscall.ECONNREFUSED
	if _, err := refused.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read on a refused stream: %v, want a reset", err)
	}
}

// curl through the proxy with optimistic data: the body arrives byte-exact,
// and a refused destination is a failed transfer, not an empty answer.
func TestSOCKSOptimisticCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	port, sum := dataServer(t)
	tn := newTestNet(t, 3, nil)
	c := tn.build(t, 0, 1, 2)
	addr := serveSOCKS(t, socks.Config{Dialer: circuitDialer(c)})
	const size = 300 << 10
	for _, flag := range []string{"--socks5-hostname", "--socks4a", "--proxytunnel"} {
		args := []string{"-sS", "--max-time", "20", "--noproxy", ""}
		if flag == "--proxytunnel" {
			args = append(args, "--proxytunnel", "--proxy", "http://"+addr)
		} else {
			args = append(args, flag, addr)
		}
		out, err := exec.Command(curl, append(args, fmt.Sprintf("http://localhost:%d/bytes/%d", port, size))...).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", flag, err)
		}
		if len(out) != size || sha256.Sum256(out) != sum(size) {
			t.Fatalf("curl %s: %d bytes, not the %d sent", flag, len(out), size)
		}
	}
	closed := closedPort(t)
	err = exec.Command(curl, "-sS", "--max-time", "20", "--noproxy", "", "--socks5-hostname", addr,
		"http://127.0.0.1:"+strconv.Itoa(closed)+"/").Run()
	var ee *exec.ExitError
	// 55 and 56: the connection was reset while sending or receiving; 52
	// ("empty reply from server") would be a refusal taken for an answer.
	if !errors.As(err, &ee) || (ee.ExitCode() != 55 && ee.ExitCode() != 56) {
		t.Fatalf("curl to a refused port: %v, want exit 55 or 56 (connection reset)", err)
	}
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
