package router

import "github.com/obolnet/obol/circuit"

// Meter is how payments plug into the relay: it is told of every cell a
// circuit moves, may pause a circuit that has run out of credit, and
// handles the payment cells addressed to this hop.
type Meter interface {
	// Open starts metering a new circuit. ctl lets the meter resume or
	// destroy the circuit later, e.g. when a payment arrives or a grace
	// period runs out.
	Open(ctl Control) CircuitMeter
}

// CircuitMeter meters one circuit. Its methods are called from the
// circuit's own goroutines, one at a time.
type CircuitMeter interface {
	// Cells accounts for n cells moved (either direction) and reports
	// whether the circuit may go on; false pauses it until Resume.
	Cells(n int) bool
	// Deliver handles a payment relay cell (commands 0x40–0x4F) addressed
	// to this hop and returns the cell to answer with, if any (or answers
	// later with Control.Reply). An error destroys the circuit.
	Deliver(rc circuit.RelayCell) (*circuit.RelayCell, error)
	// Close is called once when the circuit ends.
	Close()
}

// Control is a meter's handle on its circuit.
type Control interface {
	// Resume lets a paused circuit move cells again.
	Resume()
	// Destroy tears the circuit down with reason.
	Destroy(reason circuit.DestroyReason)
	// Reply sends a relay cell from this hop to the client: an answer
	// worked out off the circuit's goroutine (a payment verified and
	// stored). It does nothing once the circuit is closed.
	Reply(rc circuit.RelayCell)
}

// freeMeter meters nothing.
type freeMeter struct{}

func (freeMeter) Cells(int) bool { return true }
func (freeMeter) Deliver(circuit.RelayCell) (*circuit.RelayCell, error) {
	return nil, errNotPaid
}
func (freeMeter) Close() {}
