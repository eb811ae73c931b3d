package circuit

import "errors"

// Sentinel errors. Every rejection has its own error so that callers can
// choose a DESTROY reason with errors.Is; none of them carries key material.
var (
	// Link cells.
	ErrCellTruncated      = errors.New("circuit: cell shorter than the cell size")
	ErrCellOversized      = errors.New("circuit: cell longer than the cell size")
	ErrUnknownCommand     = errors.New("circuit: unknown cell command")
	ErrBadPadding         = errors.New("circuit: non-zero padding")
	ErrBadHandshakeType   = errors.New("circuit: unknown handshake type")
	ErrUnknownDestroyCode = errors.New("circuit: unknown destroy reason")

	// Relay cells and their payloads.
	ErrRelayLength         = errors.New("circuit: relay length exceeds the relay body")
	ErrUnknownRelayCommand = errors.New("circuit: unknown relay command")
	ErrPayloadTruncated    = errors.New("circuit: relay payload truncated")
	ErrPayloadTrailing     = errors.New("circuit: trailing bytes after relay payload")
	ErrPayloadTooLong      = errors.New("circuit: relay payload too long for a cell")
	ErrBadAddress          = errors.New("circuit: malformed address")
	ErrBadHostname         = errors.New("circuit: malformed hostname")
	ErrBadPort             = errors.New("circuit: port zero")
	ErrUnknownEndReason    = errors.New("circuit: unknown end reason")
	ErrUnknownFlags        = errors.New("circuit: unknown flag bits")
	ErrBadPeerID           = errors.New("circuit: peer ID empty or too long")
	ErrStreamID            = errors.New("circuit: stream ID not allowed for this command")
	ErrSendmeVersion       = errors.New("circuit: unknown SENDME version")

	// Layered encryption.
	ErrUnrecognized   = errors.New("circuit: cell not recognized by any hop")
	ErrBadHop         = errors.New("circuit: hop index out of range")
	ErrLayerExhausted = errors.New("circuit: layer reached its cell limit; build a new circuit")

	// Handshakes.
	ErrPathLength     = errors.New("circuit: path length out of range")
	ErrOnionKey       = errors.New("circuit: onion key not accepted")
	ErrHandshake      = errors.New("circuit: handshake failed")
	ErrRoutingKind    = errors.New("circuit: unknown routing instruction")
	ErrReplay         = errors.New("circuit: replayed handshake")
	ErrReplayFull     = errors.New("circuit: replay cache full")
	ErrClockSkew      = errors.New("circuit: create time outside the relay's window (is this computer's clock right?)")
	ErrNoOnionKeys    = errors.New("circuit: relay has no onion keys")
	ErrUnexpectedCell = errors.New("circuit: cell not expected in this circuit state")
	ErrEarlyLimit     = errors.New("circuit: too many RELAY_EARLY cells")
	ErrNoNextHop      = errors.New("circuit: no next hop to forward to")
)
