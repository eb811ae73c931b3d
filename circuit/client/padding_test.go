package client_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/padding"
	"github.com/obolnet/obol/router"
)

var fast = []padding.Bin{{Edge: time.Millisecond, Weight: 1}}

// A machine negotiated with the middle hop runs both halves: the hop
// sends its DROP cells to the client, the client its own to the hop, and
// the circuit carries streams as before.
func TestPaddingMachineRuns(t *testing.T) {
	n := newExitNet(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := n.Build(ctx, 0, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := padding.Machine{ID: 9, Client: padding.Program{Cells: 7, Delays: fast}, Relay: padding.Program{Cells: 20, Delays: fast}}
	if err := c.Pad(ctx, 1, 0, m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the padding", func() bool {
		sent, received := c.PaddingCounts()
		return sent == 7 && received == 20
	})
	if got := n.Relays[1].Router.Stats().PaddingSent; got != 20 {
		t.Fatalf("the middle hop counts %d padding cells sent, want 20", got)
	}
	if got := n.Relays[0].Router.Stats().PaddingSent + n.Relays[2].Router.Stats().PaddingSent; got != 0 {
		t.Fatalf("hops that ran no machine sent %d padding cells", got)
	}
	port, _ := strconv.Atoi(n.echo)
	s, err := c.Dial(ctx, "127.0.0.1", uint16(port))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	echoBulk(t, s, 10000)
}

// An attacker asks a hop for more padding than it may send: machines in
// both slots of 1000 cells each without delay. The hop stops at
// router.PaddingAllowance cells plus the one cell the circuit carried
// through it (the exit's CREATED).
func TestPaddingCannotAmplify(t *testing.T) {
	n := newExitNet(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := n.Build(ctx, 0, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	greedy := padding.Machine{Relay: padding.Program{Cells: padding.MaxCells, Delays: []padding.Bin{{Edge: 0, Weight: 1}}}}
	for slot := range uint8(padding.MaxMachines) {
		if err := c.Pad(ctx, 1, slot, greedy); err != nil {
			t.Fatal(err)
		}
	}
	rt := n.Relays[1].Router
	waitFor(t, "both halves to hit the budget", func() bool { return rt.Stats().PaddingRefused == padding.MaxMachines })
	const want = router.PaddingAllowance + 1
	if got := rt.Stats().PaddingSent; got != want {
		t.Fatalf("the hop sent %d padding cells, want its allowance and one: %d", got, want)
	}
	waitFor(t, "the padding", func() bool { _, r := c.PaddingCounts(); return r == want })
}

// A slot holds one machine at a time: the hop refuses a second while the
// first runs.
func TestPaddingSlotBusy(t *testing.T) {
	n := newExitNet(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := n.Build(ctx, 0, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	slow := padding.Machine{Relay: padding.Program{Cells: 5, Delays: []padding.Bin{{Edge: padding.MaxDelay, Weight: 1}}}}
	if err := c.Pad(ctx, 1, 0, slow); err != nil {
		t.Fatal(err)
	}
	if err := c.Pad(ctx, 1, 0, slow); !errors.Is(err, client.ErrPaddingRefused) {
		t.Fatalf("second machine in a busy slot: %v, want ErrPaddingRefused", err)
	}
	if err := c.Pad(ctx, 1, 1, slow); err != nil {
		t.Fatalf("the other slot: %v", err)
	}
}

// A manager with Front set runs FRONT with the middle hop of the
// circuits it builds.
func TestManagerRunsFront(t *testing.T) {
	n := newExitNet(t, 3)
	front := &padding.FrontConfig{MaxCells: 20, MinWindow: time.Millisecond, MaxWindow: 5 * time.Millisecond}
	m := n.manager(client.Config{Front: front})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := m.Dial(ctx, "tcp", net.JoinHostPort("127.0.0.1", n.echo))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	echoBulk(t, conn, 1000)
	sent := func() (total uint64) {
		for _, r := range n.Relays {
			total += r.Router.Stats().PaddingSent
		}
		return total
	}
	waitFor(t, "FRONT padding from the middle hop", func() bool { return sent() > 0 })
	if got := sent(); got > uint64(front.MaxCells) {
		t.Fatalf("%d padding cells, FRONT draws at most %d", got, front.MaxCells)
	}
	if _, err := client.NewCircuitManager(client.Config{Links: n.links, Directory: n.Dir, Front: &padding.FrontConfig{}}); err == nil {
		t.Fatal("a FRONT config without cells accepted")
	}
}
