package circuit

import "fmt"

// DestroyReason says why a circuit was torn down. It is the first byte of a
// DESTROY payload; the rest of the payload is zero.
type DestroyReason uint8

// Destroy reasons.
const (
	DestroyNone          DestroyReason = 0  // no reason given
	DestroyProtocol      DestroyReason = 1  // malformed or unexpected cell
	DestroyInternal      DestroyReason = 2  // internal error at the relay
	DestroyRequested     DestroyReason = 3  // the client asked for it
	DestroyHibernating   DestroyReason = 4  // relay is shutting down or paused
	DestroyResourceLimit DestroyReason = 5  // out of memory, circuits or sockets
	DestroyConnectFailed DestroyReason = 6  // could not reach the next hop
	DestroyNoSuchRelay   DestroyReason = 7  // next hop unknown or refused
	DestroyTimeout       DestroyReason = 8  // build or idle timeout
	DestroyDestroyed     DestroyReason = 9  // the other side of the circuit went away
	DestroyHandshake     DestroyReason = 10 // handshake failed (bad key, bad tag)
	DestroyReplay        DestroyReason = 11 // replayed handshake
	DestroyUnrecognized  DestroyReason = 12 // cell not recognized by the last hop
	DestroyPayment       DestroyReason = 13 // payment missing or invalid
	DestroyClockSkew     DestroyReason = 14 // the create's time is outside the relay's window
	destroyReasonMax                   = DestroyClockSkew
)

var destroyNames = [...]string{
	"none", "protocol", "internal", "requested", "hibernating",
	"resource-limit", "connect-failed", "no-such-relay", "timeout",
	"destroyed", "handshake", "replay", "unrecognized", "payment",
	"clock-skew",
}

func (r DestroyReason) String() string {
	if r <= destroyReasonMax {
		return destroyNames[r]
	}
	return fmt.Sprintf("destroy(%d)", uint8(r))
}

// DestroyPayload returns the PayloadLen-byte payload of a DESTROY cell.
func DestroyPayload(r DestroyReason) []byte {
	p := make([]byte, PayloadLen)
	p[0] = byte(r)
	return p
}

// ParseDestroy decodes a DESTROY payload strictly.
func ParseDestroy(p []byte) (DestroyReason, error) {
	if err := checkPayloadLen(p); err != nil {
		return 0, fmt.Errorf("parse destroy: %w", err)
	}
	r := DestroyReason(p[0])
	if r > destroyReasonMax {
		return 0, fmt.Errorf("parse destroy: %v: %w", r, ErrUnknownDestroyCode)
	}
	if !allZero(p[1:]) {
		return 0, fmt.Errorf("parse destroy: %w", ErrBadPadding)
	}
	return r, nil
}

// checkPayloadLen insists on exactly PayloadLen bytes.
func checkPayloadLen(p []byte) error {
	switch {
	case len(p) < PayloadLen:
		return ErrCellTruncated
	case len(p) > PayloadLen:
		return ErrCellOversized
	}
	return nil
}
