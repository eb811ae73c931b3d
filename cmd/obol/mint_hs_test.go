package main

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/localnet"
)

// newHiddenConnector is a hidden-service client of its own on n: it knows
// the relays from their views, nothing else. It closes with the test.
func newHiddenConnector(t *testing.T, ctx context.Context, n *localnet.Network) *hidden.Connector {
	t.Helper()
	c, err := n.NewClient(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n.Discover(ctx, c)
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	links := link.NewManager(h, link.Config{})
	links.Start()
	t.Cleanup(func() { links.Close() })
	hc, err := hidden.NewConnector(hidden.Config{Links: links, Directory: client.DirectoryFunc(c.Known)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Close() })
	return hc
}

// waitMatch waits until b's stdout matches re and returns the first
// group; it fails if b exits or ctx ends first.
func waitMatch(t *testing.T, ctx context.Context, b *background, re *regexp.Regexp) string {
	t.Helper()
	for {
		if m := re.FindStringSubmatch(b.out.String()); m != nil {
			return m[1]
		}
		select {
		case <-b.done:
			t.Fatalf("exited %d before printing %v: %s", b.code, re, b.err.String())
		case <-ctx.Done():
			t.Fatalf("printed no %v: %s", re, b.err.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// obol mint --hidden-service offers the mint as a hidden service too: a
// client that knows only the printed .obol address gets the keysets the
// mint serves locally, and a second start with the same data directory
// keeps the address.
func TestMintHiddenService(t *testing.T) {
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
	dir := t.TempDir()
	args := []string{"mint", "--hidden-service", "--bootstrap", boot, "--listen", "127.0.0.1:0", "--data-dir", dir,
		"--allow-same-subnet", "--min-guard-age", "0", "--min-exit-age", "0"}
	m := start(t, args...)
	local := waitMatch(t, ctx, m, regexp.MustCompile(`mint URL: (http://\S+)`))
	onion := waitMatch(t, ctx, m, regexp.MustCompile(`mint URL as a hidden service: http://(\S+\.obol)`))
	if !hidden.IsAddress(onion) {
		t.Fatalf("printed address %q is not a .obol address", onion)
	}
	resp, err := http.Get(local + "/v1/keysets")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	hc := newHiddenConnector(t, ctx, n)
	hcl := &http.Client{Transport: &http.Transport{DialContext: hc.Dial, DisableKeepAlives: true}}
	var got []byte
	for ctx.Err() == nil { // the descriptor may still be on its way
		resp, err := hcl.Get("http://" + onion + "/v1/keysets")
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		got, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		break
	}
	if len(want) == 0 || string(got) != string(want) {
		t.Fatalf("keysets through the hidden service %q, want the mint's %q", got, want)
	}
	m.stop(t)

	again := start(t, args...)
	if a := waitMatch(t, ctx, again, regexp.MustCompile(`mint URL as a hidden service: http://(\S+\.obol)`)); !strings.EqualFold(a, onion) {
		t.Fatalf("after a restart the mint is at %s, was %s", a, onion)
	}
}
