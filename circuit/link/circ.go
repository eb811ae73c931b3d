package link

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/obolnet/obol/circuit"
)

// Handler receives the cells of one circuit on one channel.
type Handler interface {
	// HandleCell is called with each inbound cell, in order, never
	// concurrently for one circuit. The handler owns cell: it passes it
	// on with SendCell or returns it with Release.
	HandleCell(c *Circ, cell []byte)
	// CircuitClosed is called once when the channel under the circuit
	// closes or the circuit's queue overflows or is shed (ErrQueueFull,
	// ErrOverBudget); not after Circ.Close. It may run while a HandleCell
	// of the circuit is still running.
	CircuitClosed(c *Circ, err error)
}

// Circ is one circuit's end on one channel.
//
// Inbound cells wait in a queue. A drain goroutine runs only while the
// queue has cells and the circuit is not paused, so an idle circuit costs
// no goroutine, and a paused one is simply not read: the sender's flow
// control window bounds the queue.
type Circ struct {
	ch  *Channel
	id  uint32
	h   Handler
	out *schedCirc // outbound queue and activity; the channel's outMu guards it

	cellsIn, cellsOut atomic.Uint64

	mu      sync.Mutex // guards the fields below
	q       []queued
	running bool
	paused  bool
	closed  bool
}

// queued is an inbound cell and when it arrived (Unix nanoseconds).
type queued struct {
	cell []byte
	at   int64
}

func newCirc(ch *Channel, id uint32, h Handler) *Circ {
	return &Circ{ch: ch, id: id, h: h, out: newSchedCirc()}
}

// ID is the circuit ID on this channel.
func (c *Circ) ID() uint32 { return c.id }

// Channel is the channel the circuit runs on.
func (c *Circ) Channel() *Channel { return c.ch }

// Counts returns the cells received and sent so far.
func (c *Circ) Counts() (in, out uint64) { return c.cellsIn.Load(), c.cellsOut.Load() }

func (c *Circ) push(cell []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		putCell(cell)
		return
	}
	if len(c.q) >= c.ch.maxQueue {
		c.mu.Unlock()
		putCell(cell)
		c.ch.m.counts.overflows.Add(1)
		c.fail(fmt.Errorf("%w: more than %d cells queued", ErrQueueFull, c.ch.maxQueue))
		return
	}
	c.cellsIn.Add(1)
	c.q = append(c.q, queued{cell, time.Now().UnixNano()})
	start := !c.running && !c.paused
	c.running = c.running || start
	c.mu.Unlock()
	m := c.ch.m
	m.counts.queued.Add(1)
	if m.overBudget() {
		m.shed()
	}
	if start {
		go c.drain()
	}
}

// drain delivers queued cells until the queue is empty, the circuit is
// paused or closed.
func (c *Circ) drain() {
	for {
		c.mu.Lock()
		if len(c.q) == 0 || c.paused || c.closed {
			c.running = false
			if len(c.q) == 0 {
				c.q = nil // an idle circuit keeps no buffer
			}
			c.mu.Unlock()
			return
		}
		cell := c.q[0].cell
		c.q[0] = queued{}
		c.q = c.q[1:]
		c.mu.Unlock()
		c.ch.m.counts.queued.Add(-1)
		c.h.HandleCell(c, cell)
	}
}

// Pause stops delivering inbound cells; they wait in the queue.
func (c *Circ) Pause() {
	c.mu.Lock()
	c.paused = true
	c.mu.Unlock()
}

// Resume delivers inbound cells again.
func (c *Circ) Resume() {
	c.mu.Lock()
	c.paused = false
	start := !c.running && len(c.q) > 0 && !c.closed
	c.running = c.running || start
	c.mu.Unlock()
	if start {
		go c.drain()
	}
}

// Paused reports whether the circuit is paused.
func (c *Circ) Paused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused
}

// oldest reports how many cells wait and when the oldest arrived.
func (c *Circ) oldest() (n int, arrived int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.q) == 0 {
		return 0, 0
	}
	return len(c.q), c.q[0].at
}

// Queued is the number of inbound cells waiting.
func (c *Circ) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.q)
}

// Send queues a cell with command cmd and payload (at most
// circuit.PayloadLen bytes, zero-padded) on this circuit.
func (c *Circ) Send(ctx context.Context, cmd circuit.Command, payload []byte) error {
	if len(payload) > circuit.PayloadLen {
		return ErrBadCellSize
	}
	cell := NewCell()
	cell[4] = byte(cmd)
	copy(cell[circuit.CellHeaderLen:], payload)
	return c.SendCell(ctx, cell)
}

// SendCell queues a whole cell buffer, writing this circuit's ID into it.
// The buffer then belongs to the link layer.
func (c *Circ) SendCell(ctx context.Context, cell []byte) error {
	if len(cell) != circuit.CellSize {
		return ErrBadCellSize
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		putCell(cell)
		return ErrCircuitClosed
	}
	binary.BigEndian.PutUint32(cell, c.id)
	if err := c.ch.send(ctx, c.out, cell); err != nil {
		return err
	}
	c.cellsOut.Add(1)
	return nil
}

// Close unregisters the circuit and drops its queued cells. It does not
// tell the other side; send a DESTROY first for that.
func (c *Circ) Close() {
	if c.markClosed() {
		c.ch.remove(c.id)
	}
}

// markClosed drops the queue and reports whether this call closed it.
func (c *Circ) markClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	for _, qc := range c.q {
		putCell(qc.cell)
	}
	c.ch.m.counts.queued.Add(-int64(len(c.q)))
	c.q = nil
	return true
}

// fail closes the circuit and tells its handler why, from a goroutine of
// its own: fail runs in a channel's reader, which must never wait for a
// handler, and the handler of a circuit whose queue overflowed is likely
// blocked (on a channel whose peer does not read). Waiting for it would
// stall every circuit of the reader's channel.
func (c *Circ) fail(err error) {
	if c.markClosed() {
		c.ch.remove(c.id)
		go c.h.CircuitClosed(c, err)
	}
}

// closeWith is fail for a channel that is closing (the map is gone).
func (c *Circ) closeWith(err error) {
	if c.markClosed() {
		c.h.CircuitClosed(c, err)
	}
}
