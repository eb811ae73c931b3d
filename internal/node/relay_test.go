package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
)

type peerInfo = peer.AddrInfo

// testRelay exposes what tests look into.
type testRelay struct {
	*Relay
	describer *describer
}

// openTestRelay opens a relay on loopback in a fresh data directory.
func openTestRelay(t *testing.T, cfg RelayConfig) testRelay {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(t.TempDir(), "relay")
	}
	r, err := OpenRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return testRelay{r, r.desc}
}

// TestRelaysPublishAndClientSamples runs three relays and a client with a
// cache directory, and checks what the client finds and keeps.
func TestRelaysPublishAndClientSamples(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first := openTestRelay(t, RelayConfig{Republish: time.Second, Lifetime: time.Minute})
	relays := []*Relay{first.Relay}
	for range 2 {
		r := openTestRelay(t, RelayConfig{Bootstrap: []peerInfo{first.AddrInfo()}, Roles: descriptor.RoleExit})
		relays = append(relays, r.Relay)
	}
	runAll(t, relays)
	for _, r := range relays {
		if err := waitLookup(ctx, relays[0].Node(), r); err != nil {
			t.Fatalf("relay %s never published: %v", r.ID(), err)
		}
	}
	// The client takes its view from the relays' views, which gossip
	// fills: wait until every relay's view is whole.
	for _, r := range relays {
		if err := waitView(ctx, r, len(relays)); err != nil {
			t.Fatalf("relay %s's view never held every relay: %v", r.ID(), err)
		}
	}
	dir := filepath.Join(t.TempDir(), "client")
	found := sampleWith(ctx, t, dir, first.AddrInfo(), len(relays))
	if len(found) != len(relays) {
		t.Fatalf("client found %d of %d relays", len(found), len(relays))
	}
	// A restarted client starts from its cache.
	c, err := OpenClient(ClientConfig{DataDir: dir, Bootstrap: []peerInfo{first.AddrInfo()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := len(c.Known()); n != len(relays) {
		t.Errorf("restarted client knows %d relays from its cache, want %d", n, len(relays))
	}
}

// runAll runs each relay until the test ends, and checks that Run returns
// nil once cancelled.
func runAll(t *testing.T, relays []*Relay) {
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, len(relays))
	for _, r := range relays {
		go func() { errs <- r.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range relays {
			if err := <-errs; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})
}

func waitLookup(ctx context.Context, n *dht.Node, r *Relay) error {
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, _, err := n.LookupRelay(lctx, r.ID())
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitView waits until r's view holds n relays.
func waitView(ctx context.Context, r *Relay, n int) error {
	for r.View().Len() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d relays: %w", r.View().Len(), n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func sampleWith(ctx context.Context, t *testing.T, dir string, boot peerInfo, n int) []*descriptor.Relay {
	t.Helper()
	c, err := OpenClient(ClientConfig{DataDir: dir, Bootstrap: []peerInfo{boot}})
	if err != nil {
		t.Fatal(err)
	}
	found, err := c.Sample(ctx, n)
	if err != nil {
		t.Errorf("Sample: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return found
}

// TestRelayRunStopsGoroutines checks that a relay's Run and Close leave
// no goroutine of ours behind, even while it is still trying to join.
func TestRelayRunStopsGoroutines(t *testing.T) {
	before := ourGoroutines()
	gone := openTestRelay(t, RelayConfig{})
	dead := gone.AddrInfo()
	gone.Close() // its addresses now answer nothing
	r := openTestRelay(t, RelayConfig{Bootstrap: []peerInfo{dead}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	time.Sleep(50 * time.Millisecond) // let it start joining
	if n := r.Node().RoutingTableSize(); n != 0 {
		t.Fatalf("joined through a closed relay (routing table %d)", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	r.Close()
	r.Close() // idempotent
	deadline := time.Now().Add(5 * time.Second)
	for ourGoroutines() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ourGoroutines(); n > before {
		t.Errorf("%d goroutines in obol code after Close, %d before", n, before)
	}
}

// ourGoroutines counts goroutines running code of this module, other
// than test goroutines (libp2p's own background workers are its
// business).
func ourGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/obolnet/obol/") && !strings.Contains(g, "testing.tRunner") {
			n++
		}
	}
	return n
}

// TestKeyFiles checks modes, persistence and refusal of exposed keys.
func TestKeyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	a := openTestRelay(t, RelayConfig{DataDir: dir})
	a.Close()
	for _, f := range []string{IdentityFile, OnionKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v", f, err, fi.Mode())
		}
	}
	b := openTestRelay(t, RelayConfig{DataDir: dir})
	if a.ID() != b.ID() || a.keys.CircuitKeys(time.Now())[0].Public != b.keys.CircuitKeys(time.Now())[0].Public {
		t.Error("keys changed across a restart")
	}
	b.Close()
	os.Chmod(filepath.Join(dir, OnionKeyFile), 0o640)
	if _, err := OpenRelay(RelayConfig{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("exposed onion key: err = %v", err)
	}
	os.Chmod(filepath.Join(dir, OnionKeyFile), 0o600)
	os.WriteFile(filepath.Join(dir, OnionKeyFile), []byte("short"), 0o600)
	if _, err := OpenRelay(RelayConfig{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt onion key: err = %v", err)
	}
}

// A relay saves its view soon after it has one, so that a relay that
// crashes and restarts on its data directory knows the relays at once,
// before any sync: it extends circuits only to relays in its view, and
// syncs from those it knew (a relay without bootstrap peers would have
// no one to sync from).
func TestRestartedRelayKeepsItsView(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first := openTestRelay(t, RelayConfig{})
	relays := []*Relay{first.Relay}
	for range 2 {
		r := openTestRelay(t, RelayConfig{Bootstrap: []peerInfo{first.AddrInfo()}})
		relays = append(relays, r.Relay)
	}
	runAll(t, relays)
	if err := waitView(ctx, first.Relay, len(relays)); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(first.cfg.DataDir, ViewFile)
	for {
		recs, err := dht.ReadRecords(saved)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == len(relays) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the running relay saved %d of its %d relays", len(recs), len(relays))
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Restart it, as after a crash, on a copy of its data directory.
	dir := filepath.Join(t.TempDir(), "restarted")
	if err := os.CopyFS(dir, os.DirFS(first.cfg.DataDir)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{IdentityFile, OnionKeyFile} {
		if err := os.Chmod(filepath.Join(dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	again := openTestRelay(t, RelayConfig{DataDir: dir})
	if again.ID() != first.ID() {
		t.Fatal("the copy has another identity")
	}
	for _, r := range relays[1:] {
		if !again.View().IsRelay(r.ID()) {
			t.Errorf("the restarted relay's view lacks %s before any sync", r.ID())
		}
	}
}
