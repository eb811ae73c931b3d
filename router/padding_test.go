package router_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/circuit/padding"
	"github.com/obolnet/obol/router"
)

// totalMeter counts the cells of every circuit it meters and lets
// them all pass.
type totalMeter struct{ cells atomic.Int64 }

func (m *totalMeter) Open(router.Control) router.CircuitMeter { return m }
func (m *totalMeter) Cells(n int) bool                        { m.cells.Add(int64(n)); return true }
func (m *totalMeter) Deliver(circuit.RelayCell) (*circuit.RelayCell, error) {
	return nil, nil
}
func (m *totalMeter) Close() {}

func waitPadding(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Circuit padding is metered like data at the hop that runs the machine:
// the negotiation, its answer and every DROP cell either way; link
// padding, dropped below the circuits, is never metered.
func TestPaddingMetering(t *testing.T) {
	meter := &totalMeter{}
	fastLink := link.PaddingConfig{Low: time.Millisecond, High: 2 * time.Millisecond}
	tn := newTestNet(t, 3, func(i int, c *router.Config) {
		c.Link.Padding = fastLink
		if i == 1 {
			c.Meter = meter
		}
	})
	c := tn.build(t, 0, 1, 2)
	mid := tn.Relays[1].Router
	waitPadding(t, "the circuit to settle", func() bool { return meter.cells.Load() > 0 })
	before := meter.cells.Load()
	linkBefore := mid.Stats().Link.PaddingReceived
	waitPadding(t, "link padding", func() bool { return mid.Stats().Link.PaddingReceived >= linkBefore+20 })
	if got := meter.cells.Load(); got != before {
		t.Fatalf("link padding metered: %d cells, then %d", before, got)
	}

	fast := []padding.Bin{{Edge: time.Millisecond, Weight: 1}}
	m := padding.Machine{Client: padding.Program{Cells: 5, Delays: fast}, Relay: padding.Program{Cells: 10, Delays: fast}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Pad(ctx, 1, 0, m); err != nil {
		t.Fatal(err)
	}
	waitPadding(t, "the machine", func() bool {
		sent, received := c.PaddingCounts()
		return sent == 5 && received == 10
	})
	// NEGOTIATE + NEGOTIATED + 10 from the hop + 5 from the client.
	waitPadding(t, "the meter", func() bool { return meter.cells.Load() >= before+17 })
	if got := meter.cells.Load() - before; got != 17 {
		t.Fatalf("%d cells metered for the machine, want 17", got)
	}
}
