package circuit

import (
	"errors"
	"fmt"
)

// Direction says which side of a relay a cell came from.
type Direction uint8

// Directions.
const (
	FromPrev Direction = iota + 1 // from the client's side (forward)
	FromNext                      // from the next hop (backward)
)

// DestroyedError reports a DESTROY received for a circuit.
type DestroyedError struct {
	Reason DestroyReason
}

func (e *DestroyedError) Error() string {
	if e.Reason == DestroyClockSkew {
		return "circuit: destroyed: clock-skew (the relay's clock and this computer's differ by more than 5 minutes)"
	}
	return "circuit: destroyed: " + e.Reason.String()
}

// Is makes errors.Is(err, ErrDestroyed) true.
func (e *DestroyedError) Is(target error) bool { return target == ErrDestroyed }

// ErrDestroyed matches every *DestroyedError.
var ErrDestroyed = errors.New("circuit: destroyed")

// Handle processes one inbound link cell of an existing circuit at a relay
// and says what to do with it. DESTROY yields ActClose with the reason;
// the caller tears the circuit down and sends DESTROY (reason destroyed)
// to the other side. PADDING yields ActNone. Any error means: destroy the
// circuit both ways with DestroyReasonFor(err). CREATE for a new circuit
// goes to Responder.Create instead.
func (c *RelayCircuit) Handle(from Direction, cmd Command, p []byte) (Action, error) {
	switch {
	case cmd == CmdPadding:
		return Action{Kind: ActNone}, nil
	case cmd == CmdDestroy:
		r, err := ParseDestroy(p)
		return Action{Kind: ActClose, Reason: r}, err
	case from == FromPrev && (cmd == CmdRelay || cmd == CmdRelayEarly):
		return c.HandleForward(cmd, p)
	case from == FromNext && cmd == CmdRelay:
		return c.HandleBackward(p)
	case from == FromNext && cmd == CmdCreated:
		return c.HandleCreated(p)
	}
	return Action{}, fmt.Errorf("%v from %v: %w", cmd, from, ErrUnexpectedCell)
}

func (d Direction) String() string {
	switch d {
	case FromPrev:
		return "previous hop"
	case FromNext:
		return "next hop"
	}
	return "unknown direction"
}

// Receive processes one inbound link cell of an open circuit at the
// client: a RELAY cell yields the hop that sent it and the relay cell; a
// DESTROY yields a *DestroyedError; PADDING yields hop -1 and no cell. Any
// other error means the circuit must be destroyed.
func (c *ClientCircuit) Receive(cmd Command, p []byte) (int, RelayCell, error) {
	switch cmd {
	case CmdRelay:
		return c.Open(p)
	case CmdDestroy:
		r, err := ParseDestroy(p)
		if err != nil {
			return 0, RelayCell{}, err
		}
		return 0, RelayCell{}, &DestroyedError{Reason: r}
	case CmdPadding:
		return -1, RelayCell{}, nil
	}
	return 0, RelayCell{}, fmt.Errorf("client: %v: %w", cmd, ErrUnexpectedCell)
}
