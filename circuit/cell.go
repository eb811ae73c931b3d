package circuit

import (
	"encoding/binary"
	"fmt"
)

// Link cell layout. Every cell on every link has exactly CellSize bytes:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      circuit ID (uint32 BE)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    command    |   payload (PayloadLen = 1275 bytes) ...       |
//	+-+-+-+-+-+-+-+-+                                               +
//	|                              ...                              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	// CellSize is the size of every link cell (specs/04-circuit.md §3
	// explains the choice).
	CellSize = 1280
	// CellHeaderLen is circuit ID plus command.
	CellHeaderLen = 4 + 1
	// PayloadLen is the fixed payload size of a link cell.
	PayloadLen = CellSize - CellHeaderLen
)

// ProtocolVersion is the circuit protocol this package speaks: 3, the
// wide-block relay layer of specs/04-circuit.md §6 and creates that carry
// the client's clock (§7.2, §10). Relays announce it in
// their descriptors (descriptor.Relay.Protocols); a client builds only
// through relays that announce it, since a relay of another version
// cannot open its layer.
const ProtocolVersion = 3

// Command is a link cell command.
type Command uint8

// Link cell commands. Ranges 0x40–0x4F (payment), 0x50–0x5F (hidden
// services) and 0x80–0xFF (link layer, specs/03-link.md) are reserved.
const (
	CmdPadding    Command = 0x00
	CmdCreate     Command = 0x01
	CmdCreated    Command = 0x02
	CmdRelay      Command = 0x03
	CmdRelayEarly Command = 0x04
	CmdDestroy    Command = 0x05
)

var commandNames = map[Command]string{
	CmdPadding: "PADDING", CmdCreate: "CREATE", CmdCreated: "CREATED",
	CmdRelay: "RELAY", CmdRelayEarly: "RELAY_EARLY", CmdDestroy: "DESTROY",
}

func (c Command) String() string {
	if n, ok := commandNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CMD(0x%02x)", uint8(c))
}

// Reserved reports whether c lies in a range reserved for payment,
// hidden-service or link-layer commands.
func (c Command) Reserved() bool {
	return (c >= 0x40 && c <= 0x5F) || c >= 0x80
}

// Known reports whether c is assigned or reserved, i.e. acceptable to decode.
func (c Command) Known() bool {
	_, ok := commandNames[c]
	return ok || c.Reserved()
}

// Cell is one decoded link cell. Payload always has PayloadLen bytes once
// parsed; it aliases the buffer given to ParseCell.
type Cell struct {
	CircID  uint32
	Command Command
	Payload []byte
}

// ParseCell decodes exactly one cell of CellSize bytes. The payload aliases b.
func ParseCell(b []byte) (Cell, error) {
	switch {
	case len(b) < CellSize:
		return Cell{}, fmt.Errorf("parse cell of %d bytes: %w", len(b), ErrCellTruncated)
	case len(b) > CellSize:
		return Cell{}, fmt.Errorf("parse cell of %d bytes: %w", len(b), ErrCellOversized)
	}
	c := Cell{
		CircID:  binary.BigEndian.Uint32(b[0:4]),
		Command: Command(b[4]),
		Payload: b[CellHeaderLen:CellSize:CellSize],
	}
	if !c.Command.Known() {
		return Cell{}, fmt.Errorf("parse cell: %v: %w", c.Command, ErrUnknownCommand)
	}
	return c, nil
}

// AppendBinary appends the CellSize-byte encoding of c to dst. A payload
// shorter than PayloadLen is padded with zeros; a longer one is an error.
func (c Cell) AppendBinary(dst []byte) ([]byte, error) {
	if len(c.Payload) > PayloadLen {
		return dst, fmt.Errorf("marshal cell payload of %d bytes: %w", len(c.Payload), ErrCellOversized)
	}
	if !c.Command.Known() {
		return dst, fmt.Errorf("marshal cell: %v: %w", c.Command, ErrUnknownCommand)
	}
	dst = binary.BigEndian.AppendUint32(dst, c.CircID)
	dst = append(dst, byte(c.Command))
	dst = append(dst, c.Payload...)
	return append(dst, make([]byte, PayloadLen-len(c.Payload))...), nil
}

// MarshalBinary returns the CellSize-byte encoding of c.
func (c Cell) MarshalBinary() ([]byte, error) {
	return c.AppendBinary(make([]byte, 0, CellSize))
}

// allZero reports whether every byte of b is zero.
func allZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}
