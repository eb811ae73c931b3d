// Package padding is obol's circuit padding framework
// (specs/12-padding.md), after Tor's circpad: a client negotiates padding
// machines with single hops of its circuits. A machine has two halves,
// each a small program: the client's half sends DROP cells to the hop,
// the hop's half sends DROP cells to the client, each cell after a delay
// drawn from a histogram, until the program has sent its cells or a
// stop event occurs.
//
// The package holds the wire format of the negotiation and the programs'
// logic, with no I/O: the client (circuit/client) and the relay (router)
// run the programs on their circuits.
package padding

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/obolnet/obol/circuit"
)

// Relay commands of the negotiation; padding cells are DROP (0x08).
const (
	RelayPaddingNegotiate  = circuit.RelayPaddingNegotiate
	RelayPaddingNegotiated = circuit.RelayPaddingNegotiated
)

// Negotiation commands and answers.
const (
	version = 0

	Start = 1 // start the machine in a slot
	Stop  = 2 // stop the machine in a slot

	OK      = 0
	Refused = 1
)

// Limits a relay enforces on the machines a client asks for.
const (
	// MaxMachines is the number of machines one circuit may run at one
	// hop at once (slots 0 and 1).
	MaxMachines = 2
	// MaxBins bounds a delay histogram.
	MaxBins = 8
	// MaxCells bounds the padding cells one machine half sends.
	MaxCells = 1000
	// MaxDelay bounds a histogram's largest delay (its last edge).
	MaxDelay = 60 * time.Second
)

// Stop events (bits of Program.StopOn): the program stops at the first
// non-padding relay cell of the circuit sent in that direction at the
// half's end, counted after the program started.
const (
	StopOnForward  uint8 = 1 << 0 // a cell from the client side (to or through this hop)
	StopOnBackward uint8 = 1 << 1 // a cell from the far side (from or through this hop)
	stopOnAll            = StopOnForward | StopOnBackward
)

// Bin is one bin of a delay histogram: delays up to Edge (from the
// previous bin's edge, or zero), chosen with weight Weight.
type Bin struct {
	Edge   time.Duration // a whole number of milliseconds, at most MaxDelay
	Weight uint8
}

// Program is one half of a machine: send Cells padding cells, unless a
// stop event in StopOn comes first. With the Gaps schedule each cell
// goes a delay drawn from Delays after the previous one (the first after
// the start); with Offsets, Cells delays are drawn at the start and a
// cell goes at each, counted from the start (FRONT's schedule).
type Program struct {
	Cells    uint16
	StopOn   uint8
	Schedule uint8
	Delays   []Bin
}

// Schedules of a program's delays.
const (
	Gaps    uint8 = 0
	Offsets uint8 = 1
)

// Validate checks p against the limits.
func (p Program) Validate() error {
	switch {
	case p.Cells == 0 || p.Cells > MaxCells:
		return fmt.Errorf("%w: %d cells", ErrBadProgram, p.Cells)
	case p.StopOn&^stopOnAll != 0:
		return fmt.Errorf("%w: stop events %#x", ErrBadProgram, p.StopOn)
	case p.Schedule != Gaps && p.Schedule != Offsets:
		return fmt.Errorf("%w: schedule %d", ErrBadProgram, p.Schedule)
	case len(p.Delays) == 0 || len(p.Delays) > MaxBins:
		return fmt.Errorf("%w: %d bins", ErrBadProgram, len(p.Delays))
	}
	var prev time.Duration
	var weight int
	for i, b := range p.Delays {
		if (i > 0 && b.Edge <= prev) || b.Edge > MaxDelay || b.Edge%time.Millisecond != 0 {
			return fmt.Errorf("%w: bin %d edge %v", ErrBadProgram, i, b.Edge)
		}
		prev = b.Edge
		weight += int(b.Weight)
	}
	if weight == 0 {
		return fmt.Errorf("%w: all weights zero", ErrBadProgram)
	}
	return nil
}

// Delay draws one delay: a bin by weight, then uniform within it.
func (p Program) Delay(r *rand.Rand) time.Duration {
	var total int
	for _, b := range p.Delays {
		total += int(b.Weight)
	}
	pick := r.IntN(total)
	var lo time.Duration
	for _, b := range p.Delays {
		if pick < int(b.Weight) {
			return lo + time.Duration(r.Int64N(int64(b.Edge-lo)+1))
		}
		pick -= int(b.Weight)
		lo = b.Edge
	}
	return lo
}

// MeanDelay is the mean of Delay.
func (p Program) MeanDelay() time.Duration {
	var total, sum float64
	var lo time.Duration
	for _, b := range p.Delays {
		total += float64(b.Weight)
		sum += float64(b.Weight) * float64(lo+b.Edge) / 2
		lo = b.Edge
	}
	return time.Duration(sum / total)
}

// Errors of decoding and checking.
var (
	ErrBadNegotiate = errors.New("padding: bad PADDING_NEGOTIATE")
	ErrBadReply     = errors.New("padding: bad PADDING_NEGOTIATED")
	ErrBadProgram   = errors.New("padding: program outside the limits")
)

// Negotiate is the body of PADDING_NEGOTIATE: start the hop's half of a
// machine in a slot, or stop the slot's machine.
//
//	+---------+---------+---------+------+-------------+---------+----------+-------+--------------------+
//	| version | command | machine | slot | cells (u16) | stop on | schedule | nbins | nbins × (edge ms   |
//	|         |         |         |      |             |         |          |       | u16, weight u8)    |
//	+---------+---------+---------+------+-------------+---------+----------+-------+--------------------+
//	     1         1         1       1          2           1          1         1        3 × nbins
//
// A STOP carries only the first four bytes.
type Negotiate struct {
	Command uint8
	Machine uint8 // the client's name for the machine, echoed
	Slot    uint8
	Program Program // START only
}

const negotiateHead = 9

// MarshalBinary encodes n.
func (n Negotiate) MarshalBinary() ([]byte, error) {
	if n.Command == Stop {
		return []byte{version, Stop, n.Machine, n.Slot}, nil
	}
	if err := n.Program.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, negotiateHead, negotiateHead+3*len(n.Program.Delays))
	b[0], b[1], b[2], b[3] = version, n.Command, n.Machine, n.Slot
	binary.BigEndian.PutUint16(b[4:], n.Program.Cells)
	b[6], b[7], b[8] = n.Program.StopOn, n.Program.Schedule, uint8(len(n.Program.Delays))
	for _, bin := range n.Program.Delays {
		b = binary.BigEndian.AppendUint16(b, uint16(bin.Edge/time.Millisecond))
		b = append(b, bin.Weight)
	}
	return b, nil
}

// ParseNegotiate decodes and checks a PADDING_NEGOTIATE body.
func ParseNegotiate(b []byte) (Negotiate, error) {
	if len(b) < 4 || b[0] != version {
		return Negotiate{}, fmt.Errorf("%w: header", ErrBadNegotiate)
	}
	n := Negotiate{Command: b[1], Machine: b[2], Slot: b[3]}
	if n.Slot >= MaxMachines {
		return Negotiate{}, fmt.Errorf("%w: slot %d", ErrBadNegotiate, n.Slot)
	}
	switch n.Command {
	case Stop:
		if len(b) != 4 {
			return Negotiate{}, fmt.Errorf("%w: STOP of %d bytes", ErrBadNegotiate, len(b))
		}
		return n, nil
	case Start:
	default:
		return Negotiate{}, fmt.Errorf("%w: command %d", ErrBadNegotiate, n.Command)
	}
	if len(b) < negotiateHead || len(b) != negotiateHead+3*int(b[8]) {
		return Negotiate{}, fmt.Errorf("%w: %d bytes", ErrBadNegotiate, len(b))
	}
	n.Program = Program{Cells: binary.BigEndian.Uint16(b[4:]), StopOn: b[6], Schedule: b[7]}
	for i := range int(b[8]) {
		o := negotiateHead + 3*i
		edge := time.Duration(binary.BigEndian.Uint16(b[o:])) * time.Millisecond
		n.Program.Delays = append(n.Program.Delays, Bin{Edge: edge, Weight: b[o+2]})
	}
	if err := n.Program.Validate(); err != nil {
		return Negotiate{}, fmt.Errorf("%w: %w", ErrBadNegotiate, err)
	}
	return n, nil
}

// Negotiated is the body of PADDING_NEGOTIATED, the hop's answer.
//
//	+---------+---------+---------+------+----------+
//	| version | command | machine | slot | response |
//	+---------+---------+---------+------+----------+
//	     1         1         1       1        1
type Negotiated struct {
	Command, Machine, Slot uint8
	Response               uint8 // OK or Refused
}

// MarshalBinary encodes n.
func (n Negotiated) MarshalBinary() ([]byte, error) {
	return []byte{version, n.Command, n.Machine, n.Slot, n.Response}, nil
}

// ParseNegotiated decodes a PADDING_NEGOTIATED body.
func ParseNegotiated(b []byte) (Negotiated, error) {
	if len(b) != 5 || b[0] != version {
		return Negotiated{}, fmt.Errorf("%w: %d bytes", ErrBadReply, len(b))
	}
	n := Negotiated{Command: b[1], Machine: b[2], Slot: b[3], Response: b[4]}
	switch {
	case n.Command != Start && n.Command != Stop:
		return Negotiated{}, fmt.Errorf("%w: command %d", ErrBadReply, n.Command)
	case n.Slot >= MaxMachines:
		return Negotiated{}, fmt.Errorf("%w: slot %d", ErrBadReply, n.Slot)
	case n.Response != OK && n.Response != Refused:
		return Negotiated{}, fmt.Errorf("%w: response %d", ErrBadReply, n.Response)
	}
	return n, nil
}

// Machine is a padding machine a client runs with one hop of a circuit:
// its own half, which sends DROP cells to the hop, and the hop's half,
// which the client sends in PADDING_NEGOTIATE and the hop runs. A half
// with zero Cells is not run.
type Machine struct {
	ID     uint8
	Client Program
	Relay  Program
}
