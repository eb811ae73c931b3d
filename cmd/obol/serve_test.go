package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/localnet"
)

// obol serve publishes a hidden service for a local server; a client that
// knows only the printed .obol address reaches it, and a second start with
// the same data directory keeps the address.
func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Relays: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	boot := n.Relays[0].Addrs()[0].String()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from a hidden service")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	dir := t.TempDir()
	svc := start(t, "serve", "--bootstrap", boot, "--target", ln.Addr().String(), "--port", "80", "--data-dir", dir)
	addrRe := regexp.MustCompile(`address (\S+\.obol)`)
	var addr string
	for addr == "" {
		if m := addrRe.FindStringSubmatch(svc.out.String()); m != nil {
			addr = m[1]
		}
		select {
		case <-svc.done:
			t.Fatalf("serve exited %d: %s", svc.code, svc.err.String())
		case <-ctx.Done():
			t.Fatal("serve printed no address")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !hidden.IsAddress(addr) {
		t.Fatalf("printed address %q is not a .obol address", addr)
	}

	// A client of its own: knows the relays from the DHT, nothing else.
	hc := newHiddenConnector(t, ctx, n)
	var body string
	for body == "" && ctx.Err() == nil { // the descriptor may still be on its way
		conn, err := hc.Dial(ctx, "tcp", addr+":80")
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		io.WriteString(conn, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
		b, _ := io.ReadAll(conn)
		conn.Close()
		body = string(b)
	}
	if !strings.HasSuffix(body, "hello from a hidden service") {
		t.Fatalf("got %q", body)
	}
	svc.stop(t)

	again := start(t, "serve", "--bootstrap", boot, "--target", ln.Addr().String(), "--data-dir", dir)
	for !strings.Contains(again.out.String(), addr) {
		select {
		case <-again.done:
			t.Fatalf("second serve exited %d: %s", again.code, again.err.String())
		case <-ctx.Done():
			t.Fatal("second start printed another address")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestServeFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--target", "127.0.0.1:80"},
		{"serve", "--bootstrap", "/ip4/127.0.0.1/udp/1/quic-v1/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"},
		{"serve", "--bootstrap", "/ip4/127.0.0.1/udp/1/quic-v1/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK", "--target", "nohostport"},
		{"serve", "--bootstrap", "/ip4/127.0.0.1/udp/1/quic-v1/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK", "--target", "127.0.0.1:80", "--port", "0"},
	} {
		code, _, stderr := runCmd(context.Background(), args...)
		if code != exitUsage || !strings.Contains(stderr, "invalid value") && !strings.Contains(stderr, "flag") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}

// A .obol name given to `obol proxy` reaches the hidden service that
// `obol serve` published: curl through SOCKS5 with remote name resolution.
func TestProxyReachesHiddenService(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	needTool(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Relays: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	boot := n.Relays[0].Addrs()[0].String()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hidden hello")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	svc := start(t, "serve", "--bootstrap", boot, "--target", ln.Addr().String(), "--data-dir", t.TempDir())
	addr := strings.TrimSuffix(strings.Fields(svc.waitOutput(t, "  address "))[0], " ")
	p := start(t, "proxy", "--socks", "127.0.0.1:0", "--bootstrap", boot, "--data-dir", t.TempDir(), "--allow-same-subnet")
	socksAddr := p.waitOutput(t, "  SOCKS5/SOCKS4a on ")
	var got string
	for i := 0; i < 20 && got != "hidden hello"; i++ { // the descriptor may still be on its way
		got = curlQuiet(t, "--max-time", "20", "--socks5-hostname", socksAddr, "http://"+addr+"/")
	}
	if got != "hidden hello" {
		t.Fatalf("curl to %s through the proxy: %q", addr, got)
	}
}

// curlQuiet runs curl and returns its output, or "" if it failed.
func curlQuiet(t *testing.T, args ...string) string {
	out, err := exec.Command(needTool(t, "curl"), append([]string{"-sS"}, args...)...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}
