package status_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/internal/localnet"
	"github.com/obolnet/obol/internal/metrics"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/internal/relaynet"
	"github.com/obolnet/obol/internal/status"
)

// secretPath is the path clients fetch through circuits; it must never
// show in a relay's logs, nor must the server's address.
const secretPath = "/destination-that-must-not-be-logged"

// watchedNet is a local network whose relay `watched` serves a status page
// and metrics, while a client moves traffic through circuits that use it
// as their guard.
type watchedNet struct {
	net       *localnet.Network
	watched   *node.Relay
	middle    *node.Relay
	client    host.Host // the client's host: the watched relay's previous hop
	statusURL string    // http://127.0.0.1:PORT/
	metrics   string    // http://127.0.0.1:PORT/metrics
	dest      string    // host:port of the web server reached through circuits
	logs      *relaynet.LogBuffer
	circs     []*client.Circuit

	mu      sync.Mutex // guards the fields below
	fetches int        // completed fetches
	lastErr error
	grew    chan struct{} // closed and replaced at every completed fetch
}

func startWatchedNet(t *testing.T, ctx context.Context) *watchedNet {
	t.Helper()
	w := &watchedNet{logs: &relaynet.LogBuffer{}, grew: make(chan struct{})}
	errs := status.NewErrorCounter()
	log := slog.New(errs.Handler(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	n, err := localnet.Start(ctx, localnet.Config{Relays: 4, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	w.net, w.watched, w.middle = n, n.Relays[2], n.Relays[3]

	rs := node.NewRelayStatus(w.watched, errs)
	page := status.NewServer(status.ServerConfig{Source: rs})
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(2)
	go func() { defer wg.Done(); rs.Run(runCtx) }()
	go func() { defer wg.Done(); page.Run(runCtx) }()
	w.statusURL = serve(t, page.Handler()) + "/"
	w.metrics = serve(t, metrics.Handler(metrics.NewRegistry(rs))) + "/metrics"
	w.dest = strings.TrimPrefix(serve(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != secretPath {
			http.NotFound(rw, r)
			return
		}
		rw.Write(make([]byte, 256<<10))
	})), "http://")
	w.buildCircuits(t, ctx)
	return w
}

// serve serves h on a loopback port until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// buildCircuits builds two circuits watched → middle → exit from the
// descriptors a client sampled.
func (w *watchedNet) buildCircuits(t *testing.T, ctx context.Context) {
	t.Helper()
	c, err := w.net.NewClient(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w.net.Discover(ctx, c)
	byID := map[peer.ID]*descriptor.Relay{}
	for _, d := range c.Known() {
		byID[d.PeerID] = d
	}
	exit := byID[w.net.Relays[1].ID()] // localnet: relay 1 is an exit
	if exit == nil || byID[w.watched.ID()] == nil || byID[w.middle.ID()] == nil {
		t.Fatalf("client found %d of 4 relays", len(byID))
	}
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	w.client, err = dht.NewHost(dht.HostConfig{Identity: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.client.Close() })
	links := link.NewManager(w.client, link.Config{})
	links.Start()
	t.Cleanup(func() { links.Close() })
	path := []client.Hop{hopFor(t, byID[w.watched.ID()]), hopFor(t, byID[w.middle.ID()]), hopFor(t, exit)}
	for range 2 {
		circ, err := client.Build(ctx, links, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { circ.Close() })
		w.circs = append(w.circs, circ)
	}
}

// hopFor turns a verified descriptor into a path hop.
func hopFor(t *testing.T, d *descriptor.Relay) client.Hop {
	h, err := localnet.Hop(d)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// traffic fetches through the circuits in turn, one fetch every 50 ms,
// until ctx ends.
func (w *watchedNet) traffic(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		n, err := w.fetch(ctx, w.circs[i%len(w.circs)])
		w.mu.Lock()
		if err == nil && n == 256<<10 {
			w.fetches++
			close(w.grew)
			w.grew = make(chan struct{})
		} else if err != nil {
			w.lastErr = err
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (w *watchedNet) fetch(ctx context.Context, circ *client.Circuit) (int64, error) {
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			h, port, _ := net.SplitHostPort(addr)
			p, _ := strconv.Atoi(port)
			return circ.Dial(ctx, h, uint16(p))
		}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.dest+secretPath, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return io.Copy(io.Discard, resp.Body)
}

// waitFetches waits until n more fetches have completed.
func (w *watchedNet) waitFetches(t *testing.T, n int) {
	t.Helper()
	for range n {
		w.mu.Lock()
		grew := w.grew
		w.mu.Unlock()
		select {
		case <-grew:
		case <-time.After(30 * time.Second):
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("no fetch through the circuits within 30s (%d so far; last error: %v)", w.fetches, w.lastErr)
		}
	}
}

// startTraffic runs traffic until the test ends and waits for the first
// fetch to complete.
func (w *watchedNet) startTraffic(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.traffic(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	w.waitFetches(t, 1)
}

// fetchStatus reads /api/status.
func fetchStatus(t *testing.T, url string) status.Snapshot {
	t.Helper()
	s, err := status.Fetch(context.Background(), strings.TrimSuffix(url, "/"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitStatus polls /api/status until ok accepts it.
func waitStatus(t *testing.T, url, what string, ok func(status.Snapshot) bool) status.Snapshot {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := fetchStatus(t, url)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s, "", "  ")
			t.Fatalf("status never showed %s; last:\n%s", what, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
