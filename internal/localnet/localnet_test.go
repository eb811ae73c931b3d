package localnet

import (
	"context"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obolnet/obol/descriptor"
)

// TestNetwork boots a small network, reports progress for every relay,
// lets a client discover it, and leaves nothing behind when closed.
func TestNetwork(t *testing.T) {
	before := ourGoroutines()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	events := map[EventKind]int{}
	n, err := Start(ctx, Config{Relays: 4, Progress: func(e Event) {
		mu.Lock()
		events[e.Kind]++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []EventKind{Started, Joined, Published} {
		if events[k] != 4 {
			t.Errorf("%d events of kind %d, want 4", events[k], k)
		}
	}
	c, err := n.NewClient(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	d := n.Discover(ctx, c)
	if len(d.Missing) != 0 || len(d.Found) != 4 {
		t.Errorf("found %d, missing %v", len(d.Found), d.Missing)
	}
	exits := 0
	for _, r := range d.Found {
		if r.Roles.Has(descriptor.RoleExit) {
			exits++
		}
	}
	if exits != 1 { // relay 1 of 0..3
		t.Errorf("%d exits, want 1", exits)
	}
	c.Close()
	n.Close()
	n.Close() // idempotent
	if _, err := os.Stat(n.dir); !os.IsNotExist(err) {
		t.Errorf("data directory %s left behind: %v", n.dir, err)
	}
	waitGoroutines(t, before)
}

func TestConfigValidate(t *testing.T) {
	for _, n := range []int{-1, 0, 1, MaxRelays + 1} {
		if _, err := Start(context.Background(), Config{Relays: n}); err == nil {
			t.Errorf("%d relays accepted", n)
		}
	}
}

// waitGoroutines fails if goroutines running obol code outlive the
// network by more than a few seconds.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ourGoroutines() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ourGoroutines(); n > before {
		t.Errorf("%d goroutines running obol code after Close, %d before", n, before)
	}
}

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
