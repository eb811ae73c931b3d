// Package link carries fixed-size cells between two obol nodes. All
// circuits between two nodes share one long-lived channel — a libp2p
// stream under the protocol /obol/link/1 — and are told apart by circuit
// IDs. A slow or paused circuit never stalls the others on its channel:
// each circuit has its own inbound queue, drained by a goroutine that
// exists only while the queue has work. specs/03-link.md is the protocol.
package link

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
)

// Errors a channel or circuit reports.
var (
	ErrChannelClosed  = errors.New("link: channel closed")
	ErrCircuitClosed  = errors.New("link: circuit closed")
	ErrQueueFull      = errors.New("link: circuit queue overflow")
	ErrNoCircuitIDs   = errors.New("link: no free circuit ID")
	ErrBadCellSize    = errors.New("link: cell is not CellSize bytes")
	ErrPeerNotReading = errors.New("link: the peer took no cells within the write timeout")
)

// initiatorBit marks circuit IDs allocated by the side that opened the
// channel, so both sides can create circuits without colliding.
const initiatorBit = 1 << 31

// Bounds of the cells waiting for a channel's writer: outQueue in all
// and circQueue per circuit. A circuit with nothing queued may always
// queue one cell, so that a quiet circuit never waits for a bulk one's
// room; CREATE, CREATED and cells of no circuit have outQueue of their own.
const (
	outQueue  = 512
	circQueue = 64
)

// Channel is one link to a peer.
//
// The reader goroutine owns the stream's read side and dispatches cells;
// the writer goroutine owns the write side and writes queued cells in the
// order of the channel's scheduler (sched.go).
type Channel struct {
	m         *Manager
	s         network.Stream
	remote    peer.ID
	initiator bool
	onCreate  CreateFunc
	maxQueue  int
	ready     chan struct{} // a token when cells were queued for the writer
	done      chan struct{} // closed when the channel is closed

	outMu    sync.Mutex // guards the fields below
	sched    *scheduler
	wake     chan struct{} // closed when the writer took cells, for blocked senders
	wakeUsed bool          // a sender waits on wake
	outDone  bool          // the channel closed: nothing more is queued

	winMu    sync.Mutex    // guards win
	win      window        // the sending window (window.go)
	winMoved chan struct{} // a token when a LINK_ACK arrived
	ackDue   atomic.Uint64 // cells read that the writer is to acknowledge
	ackSent  uint64        // the writer's: the count last acknowledged

	pad      padState      // link padding (padding.go)
	activity atomic.Uint64 // cells read or written, link padding not counted

	mu      sync.Mutex // guards the fields below
	circs   map[uint32]*Circ
	nextID  uint32
	err     error
	closing bool
}

// CreateFunc is called by a channel's reader for a CREATE cell on an
// unknown circuit ID of the remote side's parity. It must not block. It
// returns the handler of the new circuit, which then receives the CREATE
// cell as its first cell, or nil to drop the cell (after queueing a
// DESTROY with SendRaw, if it wants the peer told).
type CreateFunc func(ch *Channel, id uint32) Handler

func newChannel(m *Manager, s network.Stream, initiator bool) *Channel {
	return &Channel{
		m: m, s: s, remote: s.Conn().RemotePeer(), initiator: initiator,
		onCreate: m.cfg.OnCreate, maxQueue: m.cfg.MaxQueue,
		ready: make(chan struct{}, 1), done: make(chan struct{}),
		sched: newScheduler(DefaultHalfLife, time.Now()), wake: make(chan struct{}),
		win: newWindow(), winMoved: make(chan struct{}, 1),
		pad:   padState{changed: make(chan struct{}, 1)},
		circs: make(map[uint32]*Circ), nextID: 1,
	}
}

// Remote is the peer at the other end.
func (ch *Channel) Remote() peer.ID { return ch.remote }

// Done is closed when the channel has closed.
func (ch *Channel) Done() <-chan struct{} { return ch.done }

// Err is why the channel closed, or nil while it is open.
func (ch *Channel) Err() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.err
}

// NumCircuits is the number of circuits registered on the channel.
func (ch *Channel) NumCircuits() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.circs)
}

// Open registers a new circuit with a fresh ID of this side's parity.
func (ch *Channel) Open(h Handler) (*Circ, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.err != nil {
		return nil, ch.err
	}
	for range 1 << 16 {
		id := ch.nextID &^ initiatorBit
		ch.nextID++
		if ch.initiator {
			id |= initiatorBit
		}
		if _, used := ch.circs[id]; id&^initiatorBit == 0 || used {
			continue
		}
		c := newCirc(ch, id, h)
		ch.circs[id] = c
		return c, nil
	}
	return nil, ErrNoCircuitIDs
}

// Accept registers the circuit id the remote side created.
func (ch *Channel) Accept(id uint32, h Handler) (*Circ, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.err != nil {
		return nil, ch.err
	}
	if _, used := ch.circs[id]; used {
		return nil, fmt.Errorf("link: circuit ID %d in use", id)
	}
	c := newCirc(ch, id, h)
	ch.circs[id] = c
	return c, nil
}

// circuits snapshots the circuits on the channel.
func (ch *Channel) circuits() []*Circ {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]*Circ, 0, len(ch.circs))
	for _, c := range ch.circs {
		out = append(out, c)
	}
	return out
}

func (ch *Channel) remove(id uint32) {
	ch.mu.Lock()
	delete(ch.circs, id)
	ch.mu.Unlock()
}

// send queues one cell of sc (nil: of no circuit) for the writer. It
// blocks while the circuit's or the channel's queue is full, which
// back-pressures only the circuit that sends.
func (ch *Channel) send(ctx context.Context, sc *schedCirc, cell []byte) error {
	for {
		ch.outMu.Lock()
		if ch.outDone {
			ch.outMu.Unlock()
			return ErrChannelClosed
		}
		if ch.roomLocked(sc, cell) {
			ch.sched.push(sc, cell)
			ch.outMu.Unlock()
			signal(ch.ready)
			return nil
		}
		wake := ch.wake
		ch.wakeUsed = true
		ch.outMu.Unlock()
		select {
		case <-wake:
		case <-ch.done:
			return ErrChannelClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// roomLocked tells whether cell of sc may be queued now. outMu is held.
func (ch *Channel) roomLocked(sc *schedCirc, cell []byte) bool {
	switch {
	case sc == nil || isUrgent(cell):
		return len(ch.sched.urgent) < outQueue
	case len(sc.q) == 0:
		return true
	}
	return len(sc.q) < circQueue && ch.sched.n < outQueue
}

// next takes the next cell to write, or nil, and wakes blocked senders.
func (ch *Channel) next(now time.Time) []byte {
	ch.outMu.Lock()
	defer ch.outMu.Unlock()
	cell := ch.sched.pop(now)
	if cell != nil && ch.wakeUsed {
		close(ch.wake)
		ch.wake, ch.wakeUsed = make(chan struct{}), false
	}
	return cell
}

// SendRaw queues a cell that belongs to no registered circuit (a DESTROY
// for an unknown or refused circuit ID).
func (ch *Channel) SendRaw(ctx context.Context, id uint32, cmd circuit.Command, payload []byte) error {
	cell, err := circuit.Cell{CircID: id, Command: cmd, Payload: payload}.MarshalBinary()
	if err != nil {
		return err
	}
	return ch.send(ctx, nil, cell)
}

// run starts the reader, the writer and the padder and returns when all
// have ended.
func (ch *Channel) run() {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); ch.readLoop() }()
	go func() { defer wg.Done(); ch.writeLoop() }()
	go func() { defer wg.Done(); ch.padLoop() }()
	wg.Wait()
}

func (ch *Channel) readLoop() {
	r := bufio.NewReaderSize(ch.s, 16*circuit.CellSize)
	var read uint64
	for {
		cell := getCell()
		if _, err := io.ReadFull(r, cell); err != nil {
			putCell(cell)
			ch.close(fmt.Errorf("%w: read: %v", ErrChannelClosed, err))
			return
		}
		ch.trace(false, cell)
		if isLinkPadding(cell) {
			err := ch.onLinkPadding(cell)
			putCell(cell)
			if err != nil {
				ch.close(fmt.Errorf("%w: %w", ErrChannelClosed, err))
				return
			}
			continue
		}
		ch.activity.Add(1)
		if binary.BigEndian.Uint32(cell) == 0 && circuit.Command(cell[4]) == CmdLinkAck {
			err := ch.onLinkAck(cell[circuit.CellHeaderLen:])
			putCell(cell)
			if err != nil {
				ch.close(fmt.Errorf("%w: %w", ErrChannelClosed, err))
				return
			}
			continue
		}
		if read++; read%ackEvery == 0 {
			ch.ackDue.Store(read)
			signal(ch.ready)
		}
		ch.dispatch(cell)
	}
}

// onLinkAck moves the sending window.
func (ch *Channel) onLinkAck(payload []byte) error {
	count, err := parseLinkAck(payload)
	if err != nil {
		return err
	}
	ch.winMu.Lock()
	err = ch.win.onAck(count, time.Now())
	ch.winMu.Unlock()
	signal(ch.winMoved)
	return err
}

// signal leaves a token in c unless one is there.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// dispatch hands one inbound cell to its circuit, or to the CREATE
// handler, or drops it.
func (ch *Channel) dispatch(cell []byte) {
	id := binary.BigEndian.Uint32(cell)
	ch.mu.Lock()
	c := ch.circs[id]
	ch.mu.Unlock()
	switch {
	case c != nil:
		c.push(cell)
	case circuit.Command(cell[4]) == circuit.CmdCreate && ch.remoteParity(id) && ch.onCreate != nil:
		ch.acceptCreate(id, cell)
	default:
		ch.m.counts.dropped.Add(1)
		putCell(cell) // a cell for a circuit that is gone, or not allowed
	}
}

// acceptCreate registers a circuit the remote side is creating and queues
// its CREATE cell; the handshake runs in the circuit's drain goroutine, not
// in the reader.
func (ch *Channel) acceptCreate(id uint32, cell []byte) {
	h := ch.onCreate(ch, id)
	if h == nil {
		ch.m.counts.dropped.Add(1)
		putCell(cell)
		return
	}
	c, err := ch.Accept(id, h)
	if err != nil {
		ch.m.counts.dropped.Add(1)
		putCell(cell)
		return
	}
	c.push(cell)
}

// remoteParity reports whether id is one the remote side may create.
func (ch *Channel) remoteParity(id uint32) bool {
	return id&^initiatorBit != 0 && (id&initiatorBit != 0) != ch.initiator
}

func (ch *Channel) writeLoop() {
	w := bufio.NewWriterSize(stallWriter{ch.s, ch.m.cfg.WriteTimeout}, 32*circuit.CellSize)
	var stall *time.Timer // while the window is shut
	var stalled <-chan time.Time
	defer func() {
		if stall != nil {
			stall.Stop()
		}
	}()
	for {
		select {
		case <-ch.ready:
		case <-ch.winMoved: // the peer reads: the stall clock starts again
			if stall != nil {
				stall.Stop()
				stall, stalled = nil, nil
			}
		case <-stalled:
			ch.m.counts.stalled.Add(1)
			ch.close(fmt.Errorf("%w: no LINK_ACK: %w", ErrChannelClosed, ErrPeerNotReading))
			return
		case <-ch.done:
			return
		}
		shut, err := ch.writeQueued(w)
		switch {
		case err != nil:
		case shut && stall == nil:
			stall = time.NewTimer(ch.m.cfg.WriteTimeout)
			stalled = stall.C
		case !shut && stall != nil:
			stall.Stop()
			stall, stalled = nil, nil
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				ch.m.counts.stalled.Add(1)
				err = ErrPeerNotReading
			}
			ch.close(fmt.Errorf("%w: write: %w", ErrChannelClosed, err))
			return
		}
	}
}

// stallWriter fails a write to the stream that makes no progress within
// the write timeout: a peer that stops reading would otherwise hold the
// writer, the circuits sending to it and their queued cells for ever.
// Each write is at most one buffer of cells, so a peer that reads slowly
// but steadily is not cut off.
type stallWriter struct {
	s       network.Stream
	timeout time.Duration
}

func (w stallWriter) Write(p []byte) (int, error) {
	w.s.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.s.Write(p)
}

// writeQueued writes the queued cells in the scheduler's order until
// none is left or the window is shut (shut), then flushes once. The
// scheduler picks each cell when the window and the buffer can take it,
// so a cell queued meanwhile by a quieter circuit goes before the rest
// of a bulk circuit's. A LINK_ACK due goes first, window or not.
func (ch *Channel) writeQueued(w *bufio.Writer) (shut bool, err error) {
	now := time.Now()
	ch.winMu.Lock()
	open := ch.win.open()
	ch.winMu.Unlock()
	for i := 0; ; i++ {
		if i%32 == 31 {
			now = time.Now()
		}
		if due := ch.ackDue.Load(); due > ch.ackSent {
			ch.ackSent = due
			ack := linkAckCell(due)
			ch.activity.Add(1)
			ch.trace(true, ack)
			_, err := w.Write(ack)
			putCell(ack)
			if err != nil {
				return false, err
			}
		}
		if !open {
			return true, w.Flush()
		}
		cell := ch.next(now)
		if cell == nil {
			return false, w.Flush()
		}
		pad := isLinkPadding(cell)
		ch.trace(true, cell)
		_, err := w.Write(cell)
		putCell(cell)
		if err != nil {
			return false, err
		}
		if pad {
			continue // neither windowed nor counted by the peer
		}
		ch.activity.Add(1)
		ch.winMu.Lock()
		ch.win.wrote(now)
		open = ch.win.open()
		ch.winMu.Unlock()
	}
}

// Close closes the channel and every circuit on it.
func (ch *Channel) Close() error {
	ch.close(ErrChannelClosed)
	return nil
}

func (ch *Channel) close(why error) {
	ch.mu.Lock()
	if ch.closing {
		ch.mu.Unlock()
		return
	}
	ch.closing = true
	ch.err = why
	circs := ch.circs
	ch.circs = map[uint32]*Circ{}
	ch.mu.Unlock()
	close(ch.done)
	ch.outMu.Lock()
	ch.outDone = true
	for _, cell := range ch.sched.drain() {
		putCell(cell)
	}
	ch.outMu.Unlock()
	ch.s.Reset()
	for _, c := range circs {
		c.closeWith(why)
	}
}

// cellPool recycles cell buffers: a relay moves every byte through them.
var cellPool = sync.Pool{New: func() any { b := make([]byte, circuit.CellSize); return &b }}

func getCell() []byte { return (*cellPool.Get().(*[]byte))[:circuit.CellSize] }

func putCell(b []byte) {
	if cap(b) >= circuit.CellSize {
		b = b[:circuit.CellSize]
		cellPool.Put(&b)
	}
}

// NewCell returns a zeroed cell buffer from the pool; once passed to Send
// it belongs to the link layer.
func NewCell() []byte {
	b := getCell()
	clear(b)
	return b
}

// Release returns a cell buffer received from a Handler to the pool. Call
// it when done with a cell that was not passed on with Send.
func Release(cell []byte) { putCell(cell) }

// trace reports a cell to Config.Trace.
func (ch *Channel) trace(out bool, cell []byte) {
	if f := ch.m.cfg.Trace; f != nil {
		f(ch, out, binary.BigEndian.Uint32(cell), circuit.Command(cell[4]))
	}
}
