package status_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/internal/localnet"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/internal/status"
)

// TestClientStatus serves the status of a client's circuit manager, as
// `obol proxy` does: its prebuilt circuits show with their whole paths,
// bytes counted through CountingConn add up, and the page renders paths.
func TestClientStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Relays: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := n.NewClient(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n.Discover(ctx, c)
	links := link.NewManager(c.Host(), link.Config{})
	links.Start()
	defer links.Close()
	mgr, err := client.NewCircuitManager(client.Config{Links: links, Directory: client.DirectoryFunc(c.Known), AllowSameSubnet: true})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); mgr.Run(runCtx) }()
	defer func() { stop(); <-done }()

	cs := node.NewClientStatus(status.KindProxy, node.ViewOf(c, links), mgr, nil)
	page := status.NewServer(status.ServerConfig{Source: cs})
	url := serve(t, page.Handler()) + "/"
	s := waitStatus(t, url, "a prebuilt circuit", func(s status.Snapshot) bool { return len(s.Circuits) > 0 })
	ids := map[string]bool{}
	for _, id := range n.IDs() {
		ids[id.String()] = true
	}
	for _, circ := range s.Circuits {
		if len(circ.Path) != client.DefaultHops || circ.Prev != "" || circ.Next != "" {
			t.Errorf("circuit %+v, want a %d-hop path only", circ, client.DefaultHops)
		}
		for _, h := range circ.Path {
			if !ids[h] {
				t.Errorf("path hop %s is not a relay of the network", h)
			}
		}
	}
	if s.Node.Kind != status.KindProxy || s.Node.PeerID != "" || len(s.Relays) != len(n.Relays) || s.Traffic.Channels == 0 {
		t.Errorf("node %+v, %d relays, traffic %+v", s.Node, len(s.Relays), s.Traffic)
	}

	a, b := net.Pipe()
	counted := status.CountingConn(a, cs.CountBytes)
	go func() { buf := make([]byte, 10); b.Read(buf); b.Write([]byte("0123456789abcdef")) }()
	counted.Write([]byte("0123456789"))
	buf := make([]byte, 16)
	nr, _ := counted.Read(buf)
	if got := fetchStatus(t, url).Traffic.Bytes; got != uint64(10+nr) {
		t.Errorf("bytes %d, want %d", got, 10+nr)
	}

	if bin := chromium(t); bin != "" {
		dom := headless(t, bin, url, 2*time.Second, "--dump-dom")
		if !strings.Contains(dom, "<th>path</th>") || !strings.Contains(dom, " → ") {
			t.Errorf("page does not show the circuits' paths:\n%s", dom)
		}
	}
	resp, err := http.Get(url + "api/throughput")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("/api/throughput: %s, %s", resp.Status, resp.Header.Get("Content-Type"))
	}
}
