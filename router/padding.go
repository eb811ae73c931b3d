package router

import (
	"context"
	"fmt"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/padding"
)

// Circuit padding at a hop (specs/12-padding.md): a client starts the
// hop's half of a padding machine with PADDING_NEGOTIATE; the hop then
// sends DROP cells to the client as the program says. Padding cells are
// metered like any other cell the hop originates, so a paid relay is paid
// for them; and a hop never sends more padding on a circuit than
// PaddingAllowance plus the non-padding cells the circuit carried through
// it, so a client cannot turn a relay into an amplifier.
const PaddingAllowance = 128

// padHop is a hop's padding machines; the hop's mu guards it.
type padHop struct {
	halves  [padding.MaxMachines]*padding.Half
	sent    int // padding cells this hop sent on the circuit
	carried int // non-padding cells the circuit carried through this hop
}

// padNegotiate starts or stops a machine half. mu is held.
func (h *hop) padNegotiate(rc circuit.RelayCell) error {
	n, err := padding.ParseNegotiate(rc.Body)
	if err != nil {
		return err
	}
	resp := padding.OK
	switch {
	case n.Command == padding.Stop:
		if hf := h.pad.halves[n.Slot]; hf != nil {
			hf.Stop()
			h.pad.halves[n.Slot] = nil
		}
	case h.pad.halves[n.Slot] != nil || h.r.isClosing():
		resp = padding.Refused
	default:
		h.startHalf(n)
	}
	body, _ := padding.Negotiated{Command: n.Command, Machine: n.Machine, Slot: n.Slot, Response: uint8(resp)}.MarshalBinary()
	return h.originate(circuit.RelayCell{Command: padding.RelayPaddingNegotiated, Body: body})
}

// startHalf runs the hop's half of a machine until it ends, the client
// stops it or the circuit closes. mu is held.
func (h *hop) startHalf(n padding.Negotiate) {
	hf := padding.NewHalf(n.Program)
	h.pad.halves[n.Slot] = hf
	h.r.work.Add(1)
	go func() {
		defer h.r.work.Done()
		hf.Run(context.Background(), padding.SystemClock{}, padding.NewRand(), h.sendPadding)
		h.mu.Lock()
		if h.pad.halves[n.Slot] == hf {
			h.pad.halves[n.Slot] = nil
		}
		h.mu.Unlock()
	}()
}

// errPaddingBudget ends a machine half whose circuit has used its
// padding allowance.
var errPaddingBudget = fmt.Errorf("router: circuit padding over %d cells plus the cells carried", PaddingAllowance)

// sendPadding sends one DROP cell to the client, within the budget. A
// circuit that waits for payment sends none: the cell is skipped.
func (h *hop) sendPadding() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed || h.prev == nil:
		return errCircuitGone
	case h.pad.sent >= PaddingAllowance+h.pad.carried:
		h.r.paddingRefused.Add(1)
		return errPaddingBudget
	case h.unpaid:
		return nil
	}
	h.pad.sent++
	h.r.paddingSent.Add(1)
	return h.originate(circuit.RelayCell{Command: circuit.RelayDrop})
}

// padEvent counts a non-padding cell in direction e and tells the
// machines. mu is held.
func (h *hop) padEvent(e uint8) {
	h.pad.carried++
	for _, hf := range h.pad.halves {
		if hf != nil {
			hf.Event(e)
		}
	}
}

// closePadding stops the machines. mu is held.
func (h *hop) closePadding() {
	for i, hf := range h.pad.halves {
		if hf != nil {
			hf.Stop()
			h.pad.halves[i] = nil
		}
	}
}

// isPadding reports whether a cell's action is circuit padding or its
// negotiation addressed to this hop: such cells are no stop event.
func isPadding(act circuit.Action) bool {
	return act.Kind == circuit.ActDeliver &&
		(act.Cell.Command == circuit.RelayDrop || act.Cell.Command == padding.RelayPaddingNegotiate)
}

// errCircuitGone ends a machine half whose circuit closed.
var errCircuitGone = fmt.Errorf("router: circuit closed")

// isClosing reports whether Run is tearing the router down; no new
// goroutine may start then.
func (r *Router) isClosing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closing
}
