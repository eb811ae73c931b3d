package obol_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/obolnet/obol"
	"github.com/obolnet/obol/internal/localnet"
)

// countingResolver is an exit's resolver that counts the names it is
// asked for and answers none.
func countingResolver(n *atomic.Int64) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		n.Add(1)
		return nil, errors.New("no DNS in this test")
	}}
}

// runClient runs a client of network until the test ends.
func runClient(t *testing.T, network *localnet.Network) *obol.Client {
	t.Helper()
	c, err := obol.NewClient(obol.ClientConfig{Bootstrap: network.Bootstrap(), AllowSameSubnet: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return c
}

// Dial sends a .obol name — in any case, with trailing dots, with a
// subdomain, well formed or not — to the hidden-service client, never to
// an exit (which would look it up in public DNS). A hidden service is
// reached under every spelling of its name; a clear-net name does reach
// an exit's resolver, which shows the exits would have seen the others.
func TestDialHiddenNamesNeverReachAnExit(t *testing.T) {
	var lookups atomic.Int64
	network, err := localnet.Start(context.Background(), localnet.Config{Relays: 5,
		IsExit: func(i int) bool { return i > 0 }, Resolver: countingResolver(&lookups)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(network.Close)
	c := runClient(t, network)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ln, err := c.Listen(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	go serveEcho(ln)
	addr, _, err := net.SplitHostPort(ln.Addr().String()) // "<name>.obol"
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{addr, strings.ToUpper(addr), addr + ".", addr + "..", "www." + addr, "a.b." + strings.ToUpper(addr) + "."} {
		conn, err := c.Dial(ctx, "tcp", net.JoinHostPort(host, "80"))
		if err != nil {
			t.Fatalf("dial %s: %v", host, err)
		}
		echo(t, conn)
	}
	for _, host := range []string{"nosuchservice.obol", "NOSUCH.OBOL.", "x." + strings.Repeat("a", 56) + ".obol"} {
		if conn, err := c.Dial(ctx, "tcp", net.JoinHostPort(host, "80")); err == nil {
			conn.Close()
			t.Fatalf("dial %s: connected", host)
		}
	}
	if n := lookups.Load(); n != 0 {
		t.Fatalf("the exits looked up %d names", n)
	}
	// Dial returns before the exit answers (optimistic data): the
	// refusal comes with the first read.
	if conn, err := c.Dial(ctx, "tcp", "web.example:80"); err == nil {
		conn.SetDeadline(time.Now().Add(time.Minute))
		conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		_, err := conn.Read(make([]byte, 1))
		conn.Close()
		if err == nil {
			t.Fatal("dial web.example: answered without DNS")
		}
	}
	if lookups.Load() == 0 {
		t.Fatal("a clear-net name did not reach an exit's resolver: the check above proves nothing")
	}
}

func serveEcho(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { defer conn.Close(); io.Copy(conn, conn) }()
	}
}

func echo(t *testing.T, conn net.Conn) {
	t.Helper()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo %q: %v", b, err)
	}
}

// Run returns once everything it started has ended: no goroutine running
// client code outlives it, and Dial then says the client is closed. A
// second Run is refused.
func TestClientRunEndsEverything(t *testing.T) {
	network, err := localnet.Start(context.Background(), localnet.Config{Relays: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	before := len(clientGoroutines())
	c, err := obol.NewClient(obol.ClientConfig{Bootstrap: network.Bootstrap(), AllowSameSubnet: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ln, err := c.Listen(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	go serveEcho(ln)
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	conn, err := c.Dial(ctx, "tcp", net.JoinHostPort(host, "7"))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, conn)
	if err := c.Run(ctx); err == nil {
		t.Fatal("a second Run was not refused")
	}
	if n := len(clientGoroutines()); n <= before {
		t.Fatalf("%d goroutines run client code while it runs: the check below proves nothing", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dial(context.Background(), "tcp", "example.com:80"); !errors.Is(err, obol.ErrClosed) {
		t.Fatalf("dial after Run returned: %v, want ErrClosed", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(clientGoroutines()) > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(clientGoroutines()); n > before {
		t.Errorf("%d goroutines running client code after Run returned, %d before", n, before)
		for _, g := range clientGoroutines() {
			t.Log(g)
		}
	}
}

// A configuration that cannot work is refused before anything starts.
func TestClientConfigValidate(t *testing.T) {
	boot := []peer.AddrInfo{{ID: "x"}}
	for _, c := range []struct {
		cfg  obol.ClientConfig
		want string
	}{
		{obol.ClientConfig{}, "bootstrap"},
		{obol.ClientConfig{Bootstrap: boot, Hops: 9}, "Hops"},
		{obol.ClientConfig{Bootstrap: boot, Sample: -1}, "negative"},
		{obol.ClientConfig{Bootstrap: boot, Pay: &obol.PayConfig{}}, "WalletDir"},
		{obol.ClientConfig{Bootstrap: boot, Pay: &obol.PayConfig{WalletDir: "w", Mint: "ftp://m"}}, "http(s)"},
	} {
		if _, err := obol.NewClient(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := obol.NewClient(obol.ClientConfig{Bootstrap: boot}); err != nil {
		t.Fatal(err)
	}
}

// clientGoroutines are the stacks of the goroutines running client code:
// the relays of the test network keep theirs (their channels to one
// another among them).
func clientGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, p := range []string{"obol/circuit/client.", "obol/hidden.", "obolnet/obol.(*Client)", "obol/internal/node.(*Client)", "obol/pay."} {
			if strings.Contains(g, "github.com/obolnet/"+p) && !strings.Contains(g, "testing.tRunner") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
