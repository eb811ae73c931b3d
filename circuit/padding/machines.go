package padding

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Machine IDs of the machines obol ships. A hop treats the ID as a
// label: what it runs is the program in the negotiation.
const (
	MachineHSSetup uint8 = 1
)

// HSSetup makes the setup of a client's hidden-service circuits
// (introduction and rendezvous) look like an exit circuit's to its guard
// and to observers of the client's link, up to the first data and its
// answer (specs/12-padding.md, "The hidden-service setup machine").
//
// An exit circuit built with its BEGIN in the same flight shows: out
// CREATE, RELAY_EARLY; in CREATED, RELAY (CONNECTED); out RELAY (the
// request); in a run of RELAY (the response). A client's introduction
// and rendezvous circuits show the same first four cells (the request
// to the last hop rides the CREATE; its answer is one cell), then stop
// (introduction) or wait for the service (rendezvous). The machine is
// started with the middle hop when the last hop's answer arrives: the
// PADDING_NEGOTIATE goes out where the exit circuit's request would, and
// the middle hop answers with PADDING_NEGOTIATED and HSSetupCells DROP
// cells, spaced as a response is.
var HSSetup = Machine{
	ID: MachineHSSetup,
	Relay: Program{Cells: HSSetupCells, Delays: []Bin{
		{Edge: 0, Weight: 4},
		{Edge: time.Millisecond, Weight: 1},
	}},
}

// HSSetupCells is how many DROP cells the middle hop sends for HSSetup.
const HSSetupCells = 6

// Machines are the machines obol ships.
func Machines() []Machine { return []Machine{HSSetup} }

// MachineFront is the ID of FRONT machines.
const MachineFront uint8 = 2

// FrontConfig parametrises FRONT (Gong and Wang, "Zero-delay
// Lightweight Defenses against Website Fingerprinting", USENIX Security
// 2020): each side sends n padding cells, n uniform in [1, MaxCells], at
// times drawn from a Rayleigh distribution of scale w, w uniform in
// [MinWindow, MaxWindow] — padding front-loaded where a page load's
// distinctive cells are, without delaying any data.
type FrontConfig struct {
	MaxCells             uint16
	MinWindow, MaxWindow time.Duration
}

// DefaultFront is FRONT with the paper's windows (1–14 s) and a budget
// of at most 300 padding cells each way per circuit (384 KB), 150 on
// average when the circuit lives past the window (about 3w): for a
// circuit that moves 1 MB each way, an overhead of 15–20 %.
var DefaultFront = FrontConfig{MaxCells: 300, MinWindow: time.Second, MaxWindow: 14 * time.Second}

// Front draws a FRONT machine for one circuit: the client half and the
// hop's half each get their own cell count and window.
func Front(r *rand.Rand, c FrontConfig) Machine {
	return Machine{ID: MachineFront, Client: frontHalf(r, c), Relay: frontHalf(r, c)}
}

// frontBins approximates a Rayleigh distribution by its octiles (the
// last bin ends at the 99th percentile).
const frontBins = 8

func frontHalf(r *rand.Rand, c FrontConfig) Program {
	n := 1 + r.IntN(int(c.MaxCells))
	w := c.MinWindow + time.Duration(r.Int64N(int64(c.MaxWindow-c.MinWindow)+1))
	p := Program{Cells: uint16(n), Schedule: Offsets}
	var prev time.Duration
	for i := 1; i <= frontBins; i++ {
		q := float64(i) / frontBins
		if i == frontBins {
			q = 0.99
		}
		edge := time.Duration(float64(w) * math.Sqrt(-2*math.Log(1-q))).Round(time.Millisecond)
		edge = min(max(edge, prev+time.Millisecond), MaxDelay)
		if edge <= prev {
			break
		}
		p.Delays = append(p.Delays, Bin{Edge: edge, Weight: 1})
		prev = edge
	}
	return p
}

// Validate checks that c draws programs within the limits.
func (c FrontConfig) Validate() error {
	switch {
	case c.MaxCells == 0 || c.MaxCells > MaxCells:
		return fmt.Errorf("%w: FRONT of %d cells", ErrBadProgram, c.MaxCells)
	case c.MinWindow < time.Millisecond || c.MaxWindow < c.MinWindow:
		return fmt.Errorf("%w: FRONT windows %v–%v", ErrBadProgram, c.MinWindow, c.MaxWindow)
	case c.MaxWindow > MaxDelay*100/303: // the last bin ends at 3.03 w
		return fmt.Errorf("%w: FRONT window %v over %v", ErrBadProgram, c.MaxWindow, MaxDelay*100/303)
	}
	return nil
}
