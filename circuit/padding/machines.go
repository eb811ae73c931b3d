package padding

import "time"

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
