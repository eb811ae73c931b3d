package router

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/link"
)

func TestCircuitCaps(t *testing.T) {
	c := newCircuitCaps(3, 2, 5)
	a, b, r := peer.ID("peer-a"), peer.ID("peer-b"), peer.ID("relay")
	ch1, ch2, ch3, ch4, ch5 := &link.Channel{}, &link.Channel{}, &link.Channel{}, &link.Channel{}, &link.Channel{}
	steps := []struct {
		p     peer.ID
		ch    *link.Channel
		relay bool
		want  bool
	}{
		{a, ch1, false, true},
		{a, ch1, false, true},
		{a, ch1, false, false}, // channel cap
		{a, ch2, false, true},
		{a, ch3, false, false}, // peer cap, on a fresh channel
		{b, ch4, false, true},  // another peer is not affected
		{b, ch4, false, true},
		{b, ch4, false, false},
		{r, ch5, true, true}, // a relay: past a client's caps, on one channel
		{r, ch5, true, true},
		{r, ch5, true, true},
		{r, ch5, true, true},
		{r, ch5, true, true},
		{r, ch5, true, false}, // the relay cap
	}
	for i, s := range steps {
		if got := c.admit(s.p, s.ch, s.relay); got != s.want {
			t.Fatalf("step %d: admit = %v, want %v", i, got, s.want)
		}
	}
	c.release(a, ch1)
	if !c.admit(a, ch3, false) {
		t.Fatal("a released circuit did not make room")
	}
	for _, r := range []struct {
		p  peer.ID
		ch *link.Channel
	}{{a, ch1}, {a, ch2}, {a, ch3}, {b, ch4}, {b, ch4}, {r, ch5}, {r, ch5}, {r, ch5}, {r, ch5}, {r, ch5}} {
		c.release(r.p, r.ch)
	}
	if len(c.peers) != 0 || len(c.channels) != 0 {
		t.Fatalf("counts left after every release: %v %v", c.peers, c.channels)
	}
}

func TestIdleTimeoutShrinks(t *testing.T) {
	full, least := 30*time.Minute, time.Minute
	tests := []struct {
		pressure float64
		want     time.Duration
	}{
		{0, full},
		{0.5, full},
		{0.75, full - (full-least)/2},
		{1, least},
		{3, least},
	}
	for _, tt := range tests {
		if got := idleTimeout(full, least, tt.pressure); got != tt.want {
			t.Fatalf("pressure %.2f: %v, want %v", tt.pressure, got, tt.want)
		}
	}
	for p := 0.0; p < 1.2; p += 0.05 {
		if idleTimeout(full, least, p+0.05) > idleTimeout(full, least, p) {
			t.Fatalf("timeout grows with pressure at %.2f", p)
		}
	}
}

// TestIdleReapUnderPressure: a circuit idle for five minutes survives an
// unloaded relay and is reaped once memory runs short.
func TestIdleReapUnderPressure(t *testing.T) {
	var inUse uint64
	cfg := Config{MaxCircuits: 100, IdleTimeout: 30 * time.Minute, MemoryBudget: 1 << 30,
		MemoryInUse: func() uint64 { return inUse }}
	cfg.defaults()
	r := &Router{cfg: cfg, circs: map[*hop]struct{}{}}
	now := time.Now()
	idle, busy := &hop{r: r}, &hop{r: r}
	idle.lastActive.Store(now.Add(-5 * time.Minute).UnixNano())
	busy.lastActive.Store(now.Add(-10 * time.Second).UnixNano())
	r.circs[idle], r.circs[busy] = struct{}{}, struct{}{}

	for _, tt := range []struct {
		inUse uint64
		reap  int
	}{{0, 0}, {1 << 29, 0}, {1 << 30, 1}, {2 << 30, 1}} {
		inUse = tt.inUse
		got := r.idle(now.Add(-r.currentIdleTimeout()))
		if len(got) != tt.reap || (tt.reap == 1 && got[0] != idle) {
			t.Fatalf("heap %d MiB: reaping %d circuits, want %d (timeout %v)", tt.inUse>>20, len(got), tt.reap, r.currentIdleTimeout())
		}
	}
	// A full circuit table is pressure too, without a memory budget.
	r.cfg.MemoryBudget = 0
	r.cfg.MaxCircuits = 2
	if got := r.idle(now.Add(-r.currentIdleTimeout())); len(got) != 1 {
		t.Fatalf("full table: reaping %d circuits, want 1", len(got))
	}
}
