package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/flow"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/circuit/padding"
)

var errNotPaid = errors.New("router: this relay takes no payments")

// hop is a relay's state of one circuit.
//
// Cells from the previous hop arrive on prev and are handled by hop
// itself; cells from the next hop arrive on next and are handled by
// backSide. Both, and exit stream goroutines, take mu, which also keeps
// backward cells in the order their layer produced them.
type hop struct {
	r          *Router
	prevPeer   peer.ID
	prevChan   *link.Channel // set once by onCreate under r.mu, for the caps
	lastActive atomic.Int64  // Unix nanoseconds of the last cell
	// known is the next hop's peer ID once the circuit is extended, for
	// Knowledge: read without mu, which an extend holds while it dials.
	known atomic.Pointer[peer.ID]

	mu     sync.Mutex // guards everything below
	rc     *circuit.RelayCircuit
	meter  CircuitMeter
	prev   *link.Circ
	next   *link.Circ
	exit   *exitSide
	closed bool
	unpaid bool       // the meter found no credit: the circuit is held
	held   []heldCell // cells from prev kept while unpaid, in order
	hs     *hsState   // hidden-service role (hidden.go)
	pad    padHop     // circuit padding machines (padding.go)
}

// heldCell is a decrypted cell from the previous hop that waits for
// payment.
type heldCell struct {
	act  circuit.Action
	cell []byte
}

// maxHeld bounds the cells held for payment; the circuit flow window keeps
// an honest client far below it.
const maxHeld = 4096

func newHop(r *Router, prev peer.ID) *hop {
	h := &hop{r: r, prevPeer: prev}
	h.touch()
	return h
}

func (h *hop) touch() { h.lastActive.Store(time.Now().UnixNano()) }

func (h *hop) knowledge() Knowledge {
	k := Knowledge{Prev: h.prevPeer}
	if next := h.known.Load(); next != nil {
		k.Next = *next
	}
	return k
}

// HandleCell processes a cell from the previous hop.
func (h *hop) HandleCell(c *link.Circ, cell []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		link.Release(cell)
		return
	}
	h.touch()
	cmd, p := circuit.Command(cell[4]), cell[circuit.CellHeaderLen:]
	if h.rc == nil {
		h.prev = c
		h.create(cmd, p, cell)
		return
	}
	act, err := h.rc.Handle(circuit.FromPrev, cmd, p)
	if err != nil {
		link.Release(cell)
		h.destroyLocked(circuit.DestroyReasonFor(err))
		return
	}
	if !h.ridesFree(act) {
		h.meterCells()
	}
	if !isPadding(act) {
		h.padEvent(padding.StopOnForward)
	}
	if h.unpaid && holds(act) {
		h.hold(act, cell)
		return
	}
	h.apply(circuit.FromPrev, act, cell)
}

// holds reports whether a cell from the previous hop waits while the
// circuit waits for payment: everything it would move does, but not a
// payment cell for this hop (or the circuit could never be paid) nor a
// DESTROY.
func holds(act circuit.Action) bool {
	switch act.Kind {
	case circuit.ActForward, circuit.ActBackward:
		return true
	case circuit.ActDeliver:
		return act.Cell.Command < circuit.RelayPayChannelOpen || act.Cell.Command > 0x4F
	}
	return false
}

// hold keeps a cell from the previous hop until the circuit is paid.
func (h *hop) hold(act circuit.Action, cell []byte) {
	if len(h.held) >= maxHeld {
		link.Release(cell)
		h.destroyLocked(circuit.DestroyResourceLimit)
		return
	}
	h.held = append(h.held, heldCell{act, cell})
}

// create runs the handshake of the circuit's first cell.
func (h *hop) create(cmd circuit.Command, p, cell []byte) {
	if cmd != circuit.CmdCreate {
		link.Release(cell)
		h.destroyLocked(circuit.DestroyProtocol)
		return
	}
	rc, act, err := h.r.relay.Create(p)
	if err != nil {
		h.r.failedCreates.Add(1)
		link.Release(cell)
		h.destroyLocked(circuit.DestroyReasonFor(err))
		return
	}
	h.rc = rc
	h.meter = freeMeter{}
	if h.r.cfg.Meter != nil {
		h.meter = h.r.cfg.Meter.Open(control{h})
	}
	h.apply(circuit.FromPrev, act, cell)
}

// apply carries out what the circuit layer decided about one cell. It
// owns cell.
func (h *hop) apply(from circuit.Direction, act circuit.Action, cell []byte) {
	switch act.Kind {
	case circuit.ActForward:
		if act.Next != nil {
			h.extend(act, cell)
			return
		}
		h.send(h.next, act.Command, act.Payload, cell)
		h.r.forwarded.Add(1)
	case circuit.ActBackward:
		h.send(h.prev, act.Command, act.Payload, cell)
		if from == circuit.FromNext {
			h.r.forwarded.Add(1)
		}
	case circuit.ActDeliver:
		h.deliver(act.Cell)
		link.Release(cell)
	case circuit.ActClose:
		link.Release(cell)
		h.closeFrom(from)
	default:
		link.Release(cell)
	}
}

// send puts payload on c as a cmd cell, reusing cell's buffer when the
// payload is the buffer's own (a forwarded cell is never copied).
func (h *hop) send(c *link.Circ, cmd circuit.Command, payload, cell []byte) {
	if c == nil {
		link.Release(cell)
		h.destroyLocked(circuit.DestroyProtocol)
		return
	}
	ctx := context.Background()
	var err error
	if aliases(payload, cell[circuit.CellHeaderLen:]) {
		cell[4] = byte(cmd)
		err = c.SendCell(ctx, cell)
	} else {
		err = c.Send(ctx, cmd, payload)
		link.Release(cell)
	}
	if err != nil {
		h.destroyLocked(circuit.DestroyDestroyed)
	}
}

func aliases(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// extend opens the circuit to the next hop and sends it the CREATE. It
// runs in the previous side's goroutine: only this circuit waits for it.
func (h *hop) extend(act circuit.Action, cell []byte) {
	defer link.Release(cell)
	next, err := peer.IDFromBytes(act.Next)
	if err != nil || next == h.r.host.ID() || next == h.prevPeer || h.next != nil {
		h.destroyLocked(circuit.DestroyNoSuchRelay)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.r.cfg.ConnectTimeout)
	defer cancel()
	c, err := h.openNext(ctx, next)
	if err != nil {
		h.r.cfg.Logger.Debug("next hop unreachable", "peer", next, "err", err)
		h.destroyLocked(circuit.DestroyConnectFailed)
		return
	}
	h.next = c
	h.known.Store(&next)
	if err := c.Send(ctx, act.Command, act.Payload); err != nil {
		h.destroyLocked(circuit.DestroyConnectFailed)
	}
}

func (h *hop) openNext(ctx context.Context, next peer.ID) (*link.Circ, error) {
	ai, err := h.r.cfg.Directory.AddrInfo(ctx, next)
	if err != nil {
		return nil, err
	}
	ch, err := h.r.links.Channel(ctx, ai)
	if err != nil {
		return nil, err
	}
	return ch.Open(backSide{h})
}

// deliver handles a relay cell addressed to this hop.
func (h *hop) deliver(rc circuit.RelayCell) {
	var err error
	switch {
	case rc.Command >= circuit.RelayPayChannelOpen && rc.Command <= 0x4F:
		err = h.payment(rc)
	case rc.Command == circuit.RelayDrop:
	case rc.Command == padding.RelayPaddingNegotiate:
		err = h.padNegotiate(rc)
	case rc.Command == circuit.RelaySendme && rc.StreamID == 0:
		err = h.exitSide().onSendme(rc.Body)
	case isStreamCommand(rc.Command):
		err = h.exitSide().handle(rc)
	case rc.Command >= circuit.RelayEstablishIntro && rc.Command <= 0x5F:
		err = h.hidden(rc)
	default:
		err = fmt.Errorf("router: %v not handled at this hop", rc.Command)
	}
	if err != nil {
		h.r.cfg.Logger.Debug("relay cell refused", "err", err)
		h.destroyLocked(circuit.DestroyProtocol)
	}
}

func isStreamCommand(c circuit.RelayCommand) bool {
	switch c {
	case circuit.RelayBegin, circuit.RelayData, circuit.RelayEnd, circuit.RelaySendme,
		circuit.RelayResolve, circuit.RelayXon, circuit.RelayXoff:
		return true
	}
	return false
}

func (h *hop) payment(rc circuit.RelayCell) error {
	reply, err := h.meter.Deliver(rc)
	if err != nil {
		return err
	}
	if reply != nil {
		return h.originate(*reply)
	}
	return nil
}

// originate sends a relay cell from this hop to the client. mu is held.
func (h *hop) originate(rc circuit.RelayCell) error {
	_, err := h.originateTag(rc)
	return err
}

// originateTag is originate returning the cell's tag.
func (h *hop) originateTag(rc circuit.RelayCell) (flow.Tag, error) {
	return h.originateMetered(rc, true)
}

// originateMetered is originateTag, counting the cell against the
// circuit's payments only if metered.
func (h *hop) originateMetered(rc circuit.RelayCell, metered bool) (flow.Tag, error) {
	cell := link.NewCell()
	tag, err := h.rc.OriginateInto(cell[circuit.CellHeaderLen:], rc)
	if err != nil {
		link.Release(cell)
		return flow.Tag{}, err
	}
	cell[4] = byte(circuit.CmdRelay)
	if metered {
		h.meterCells()
	}
	return flow.Tag(tag), h.prev.SendCell(context.Background(), cell)
}

// meterCells counts one cell and, if the circuit has no credit, stops
// forwarding it: the next hop is no longer read and cells from the
// previous hop are held, except payments addressed here.
func (h *hop) meterCells() {
	if !h.meter.Cells(1) {
		h.unpaid = true
		if h.next != nil {
			h.next.Pause()
		}
	}
}

// closeFrom handles a DESTROY that came from one side: the other side is
// told, with reason "destroyed".
func (h *hop) closeFrom(from circuit.Direction) {
	if from == circuit.FromPrev {
		h.prev.Close()
		h.prev = nil
	} else if h.next != nil {
		h.next.Close()
		h.next = nil
	}
	h.destroyLocked(circuit.DestroyDestroyed)
}

// destroy tears the circuit down, telling both sides why.
func (h *hop) destroy(why circuit.DestroyReason) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.destroyLocked(why)
}

func (h *hop) destroyLocked(why circuit.DestroyReason) {
	if h.closed {
		return
	}
	h.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	for _, c := range []*link.Circ{h.prev, h.next} {
		if c != nil {
			c.Send(ctx, circuit.CmdDestroy, circuit.DestroyPayload(why))
			c.Close()
		}
	}
	if h.exit != nil {
		h.exit.close()
	}
	for _, hc := range h.held {
		link.Release(hc.cell)
	}
	h.held = nil
	if h.meter != nil {
		h.meter.Close()
	}
	h.closeHidden()
	h.closePadding()
	h.r.forget(h)
}

// CircuitClosed: the channel to the previous hop died.
func (h *hop) CircuitClosed(c *link.Circ, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.prev = nil
	h.destroyLocked(circuit.DestroyDestroyed)
}

// backSide handles the cells from the next hop.
type backSide struct{ h *hop }

func (b backSide) HandleCell(c *link.Circ, cell []byte) {
	h := b.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		link.Release(cell)
		return
	}
	h.touch()
	act, err := h.rc.Handle(circuit.FromNext, circuit.Command(cell[4]), cell[circuit.CellHeaderLen:])
	if err != nil {
		link.Release(cell)
		h.destroyLocked(circuit.DestroyReasonFor(err))
		return
	}
	h.meterCells()
	h.padEvent(padding.StopOnBackward)
	h.apply(circuit.FromNext, act, cell)
}

func (b backSide) CircuitClosed(c *link.Circ, err error) {
	h := b.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next = nil
	h.destroyLocked(circuit.DestroyDestroyed)
}

// control is the meter's handle on a hop.
type control struct{ h *hop }

func (c control) Resume() {
	h := c.h
	h.mu.Lock()
	h.unpaid = false
	h.paidAgain()
	for len(h.held) > 0 && !h.closed && !h.unpaid {
		hc := h.held[0]
		h.held[0] = heldCell{}
		h.held = h.held[1:]
		h.apply(circuit.FromPrev, hc.act, hc.cell)
	}
	next, unpaid := h.next, h.unpaid
	h.mu.Unlock()
	if next != nil && !unpaid {
		next.Resume()
	}
}

func (c control) Destroy(reason circuit.DestroyReason) { c.h.destroy(reason) }

func (c control) Reply(rc circuit.RelayCell) {
	h := c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.prev == nil {
		return
	}
	if err := h.originate(rc); err != nil {
		h.destroyLocked(circuit.DestroyInternal)
	}
}

// sendTimeout bounds a DESTROY or END that cannot be queued.
const sendTimeout = 5 * time.Second
