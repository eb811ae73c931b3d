package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/net/proxy"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/internal/localnet"

	"github.com/obolnet/obol/descriptor"
)

// needTool returns the path of a third-party program a test runs. A
// missing one skips the test, unless CI is set (scripts/install-test-deps.sh
// installs them all).
func needTool(t *testing.T, name string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range fallbacks {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; run scripts/install-test-deps.sh", name)
	}
	t.Skipf("%s is not installed (scripts/install-test-deps.sh installs it)", name)
	return ""
}

// startProxy runs `obol proxy` against a network of relays that publish
// into a DHT, and returns its SOCKS address.
func startProxy(t *testing.T, relays int, extra ...string) (socksAddr string, cn *circuitNet) {
	t.Helper()
	cn = newCircuitNet(t, relays, circuitNetOptions{dht: true, roles: func(i int) descriptor.Role {
		return descriptor.RoleGuard | descriptor.RoleExit
	}})
	args := append([]string{"proxy", "--socks", "127.0.0.1:0", "--bootstrap", cn.bootstrap(),
		"--data-dir", t.TempDir()}, extra...)
	b := start(t, args...)
	socksAddr = b.waitOutput(t, "  SOCKS5/SOCKS4a on ")
	return socksAddr, cn
}

func curl(t *testing.T, args ...string) string {
	t.Helper()
	bin := needTool(t, "curl")
	out, err := exec.Command(bin, append([]string{"-sS", "--max-time", "60"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// curl through `obol proxy`, with the name resolved by the exit
// (--socks5-hostname) and with SOCKS4a.
func TestProxyCurl(t *testing.T) {
	needTool(t, "curl")
	socksAddr, _ := startProxy(t, 5)
	web := httpServer(t)
	_, port, _ := net.SplitHostPort(web)
	url := "http://localhost:" + port + "/hello"
	if got := curl(t, "--socks5-hostname", socksAddr, url); got != "hello through obol\n" {
		t.Fatalf("socks5-hostname: %q", got)
	}
	if got := curl(t, "--socks4a", socksAddr, url); got != "hello through obol\n" {
		t.Fatalf("socks4a: %q", got)
	}
	if got := curl(t, "--socks5-hostname", socksAddr, "--proxy-user", "u1:p1", url); got != "hello through obol\n" {
		t.Fatalf("socks5 with credentials: %q", got)
	}
}

// ssh to an sshd on loopback, through `obol proxy` with nc as the
// ProxyCommand, runs a command and reads its output.
func TestProxySSH(t *testing.T) {
	sd := startSSHD(t)
	socksAddr, _ := startProxy(t, 5)
	host, port, _ := net.SplitHostPort(sd.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := sd.command(ctx, socksAddr, host, port, "echo obol-$((6*7))").CombinedOutput()
	if err != nil {
		t.Fatalf("ssh: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "obol-42" {
		t.Fatalf("ssh output %q", out)
	}
}

// socks5Dialer is golang.org/x/net/proxy's SOCKS5 dialer, with user as
// the username when it is not empty.
func socks5Dialer(proxyAddr, user string) (proxy.Dialer, error) {
	var auth *proxy.Auth
	if user != "" {
		auth = &proxy.Auth{User: user, Password: "-"}
	}
	return proxy.SOCKS5("tcp", proxyAddr, auth, proxy.Direct)
}

// Go's golang.org/x/net/proxy SOCKS5 dialer through `obol proxy`.
func TestProxyGoSOCKS5(t *testing.T) {
	socksAddr, _ := startProxy(t, 5)
	web := httpServer(t)
	for _, u := range []string{"", "dave", "erin"} {
		conn := socks5Connect(t, socksAddr, web, u)
		if got := httpGet(t, conn, "/hello"); got != "hello through obol\n" {
			t.Fatalf("user %q: body %q", u, got)
		}
		conn.Close()
	}
}

// `obol proxy` stops on cancellation (SIGINT, SIGTERM) with exit code 0
// and leaves no goroutine of the manager or the SOCKS server behind.
func TestProxyStopsCleanly(t *testing.T) {
	cn := newCircuitNet(t, 4, circuitNetOptions{dht: true})
	web := httpServer(t)
	b := start(t, "proxy", "--socks", "127.0.0.1:0", "--bootstrap", cn.bootstrap(), "--data-dir", t.TempDir())
	socksAddr := b.waitOutput(t, "  SOCKS5/SOCKS4a on ")
	if !strings.Contains(b.out.String(), "4 relays known, 3-hop circuits") {
		t.Fatalf("output:\n%s", b.out.String())
	}
	conn := socks5Connect(t, socksAddr, web, "")
	httpGet(t, conn, "/hello")
	// The connection is left open: stopping must close it.
	if code := b.stop(t); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, b.err.String())
	}
	conn.Close()
	waitFor(t, "the proxy's goroutines to end", func() bool { return proxyGoroutines() == "" })
}

// proxyGoroutines returns the stacks of goroutines running code of the
// circuit manager or the SOCKS server.
func proxyGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "obol/circuit/client.") || strings.Contains(g, "obol/circuit/socks.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// `obol proxy` over the relays of `obol testnet` (internal/localnet):
// every relay is on 127.0.0.1, so the same-subnet rule is lifted.
func TestProxyOverLocalnet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Relays: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	boot := n.Bootstrap()[0]
	addrs, _ := peer.AddrInfoToP2pAddrs(&boot)
	b := start(t, "proxy", "--socks", "127.0.0.1:0", "--bootstrap", addrs[0].String(),
		"--data-dir", t.TempDir(), "--allow-same-subnet")
	socksAddr := b.waitOutput(t, "  SOCKS5/SOCKS4a on ")
	web := httpServer(t)
	for _, u := range []string{"", "frank"} {
		conn := socks5Connect(t, socksAddr, web, u)
		if got := httpGet(t, conn, "/hello"); got != "hello through obol\n" {
			t.Fatalf("user %q: body %q", u, got)
		}
		conn.Close()
	}
}

// curl through `obol proxy --http-connect` with an HTTP CONNECT tunnel.
func TestProxyHTTPConnect(t *testing.T) {
	needTool(t, "curl")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	startProxy(t, 4, "--http-connect", httpAddr)
	web := httpServer(t)
	_, port, _ := net.SplitHostPort(web)
	if got := curl(t, "--proxytunnel", "--proxy", "http://"+httpAddr, "http://localhost:"+port+"/hello"); got != "hello through obol\n" {
		t.Fatalf("HTTP CONNECT: %q", got)
	}
}

// The guard set survives a restart of `obol proxy` with the same data
// directory.
func TestProxyKeepsGuardsAcrossRestarts(t *testing.T) {
	cn := newCircuitNet(t, 5, circuitNetOptions{dht: true})
	dir := t.TempDir()
	args := []string{"proxy", "--socks", "127.0.0.1:0", "--bootstrap", cn.bootstrap(), "--data-dir", dir}
	guards := func() string {
		b := start(t, args...)
		b.waitOutput(t, "  SOCKS5/SOCKS4a on ")
		var data []byte
		waitFor(t, "the guard file", func() bool {
			var err error
			data, err = os.ReadFile(filepath.Join(dir, obol.GuardFile))
			return err == nil && strings.Count(string(data), `"id"`) == 3
		})
		if code := b.stop(t); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		return string(data)
	}
	ids := regexp.MustCompile(`"id": "([^"]+)"`)
	first, second := guards(), guards()
	a, b := ids.FindAllString(first, -1), ids.FindAllString(second, -1)
	if len(a) != 3 || !slices.Equal(a, b) {
		t.Fatalf("guards changed across a restart:\n%s\n%s", first, second)
	}
}
