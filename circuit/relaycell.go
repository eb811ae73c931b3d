package circuit

import (
	"encoding/binary"
	"fmt"
)

// Relay cell layout, the plaintext inside the payload of a RELAY or
// RELAY_EARLY link cell once every layer up to the addressed hop is removed:
//
//	 0               1               2               3
//	+---------------+---------------+---------------+---------------+
//	|                                                               |
//	+     check value N (16 bytes): the addressed layer's expected  +
//	|     left block, which is how that hop recognises the cell     |
//	+                                                               +
//	|                                                               |
//	+---------------+---------------+---------------+---------------+
//	|  reserved (0x0000)            | relay command | stream ID (hi)|
//	+---------------+---------------+---------------+---------------+
//	| stream ID (lo)|  length (uint16 BE)           | body ...      |
//	+---------------+-------------------------------+---------------+
//	|  body (length bytes), then zero padding ...                   |
//	+---------------------------------------------------------------+
//
// The cell's tag (RelayCell.Tag, echoed by authenticated SENDMEs) is not a
// field: it is the left block on the ciphertext side of the addressed
// layer (crypt.go).
const (
	checkOff    = 0
	TagLen      = 16
	reservedOff = checkOff + TagLen // 16
	relayCmdOff = reservedOff + 2   // 18
	streamIDOff = relayCmdOff + 1   // 19
	lengthOff   = streamIDOff + 2   // 21
	// RelayHeaderLen is the size of the relay cell header.
	RelayHeaderLen = lengthOff + 2 // 23
	// MaxRelayBody is the most body bytes one relay cell carries.
	MaxRelayBody = PayloadLen - RelayHeaderLen // 1252
)

// RelayCommand is the command of a relay cell.
type RelayCommand uint8

// Relay commands. 0x40–0x4F are reserved for payment, 0x50–0x5F for hidden
// services; their bodies are defined by those specs.
const (
	RelayBegin     RelayCommand = 0x01
	RelayData      RelayCommand = 0x02
	RelayEnd       RelayCommand = 0x03
	RelayConnected RelayCommand = 0x04
	RelaySendme    RelayCommand = 0x05
	RelayExtend    RelayCommand = 0x06
	RelayExtended  RelayCommand = 0x07
	RelayDrop      RelayCommand = 0x08
	RelayResolve   RelayCommand = 0x09
	RelayResolved  RelayCommand = 0x0A
	RelayXoff      RelayCommand = 0x0B // stream receiver: stop sending (flow control)
	RelayXon       RelayCommand = 0x0C // stream receiver: go on

	// Circuit padding (specs/12-padding.md, package circuit/padding).
	RelayPaddingNegotiate  RelayCommand = 0x0D
	RelayPaddingNegotiated RelayCommand = 0x0E

	RelayPayChannelOpen   RelayCommand = 0x40
	RelayPayBalanceUpdate RelayCommand = 0x41
	RelayPayAck           RelayCommand = 0x42

	RelayEstablishIntro        RelayCommand = 0x50
	RelayIntroEstablished      RelayCommand = 0x51
	RelayIntroduce1            RelayCommand = 0x52
	RelayIntroduce2            RelayCommand = 0x53
	RelayIntroduceAck          RelayCommand = 0x54
	RelayEstablishRendezvous   RelayCommand = 0x55
	RelayRendezvousEstablished RelayCommand = 0x56
	RelayRendezvous1           RelayCommand = 0x57
	RelayRendezvous2           RelayCommand = 0x58
)

// streamRule says whether a command's stream ID must be zero (circuit
// level), non-zero (stream level) or may be either.
type streamRule uint8

const (
	streamZero streamRule = iota
	streamNonZero
	streamAny
)

var relayCommands = map[RelayCommand]struct {
	name string
	rule streamRule
}{
	RelayBegin: {"BEGIN", streamNonZero}, RelayData: {"DATA", streamNonZero},
	RelayEnd: {"END", streamNonZero}, RelayConnected: {"CONNECTED", streamNonZero},
	RelaySendme: {"SENDME", streamAny}, RelayExtend: {"EXTEND", streamZero},
	RelayExtended: {"EXTENDED", streamZero}, RelayDrop: {"DROP", streamZero},
	RelayResolve: {"RESOLVE", streamNonZero}, RelayResolved: {"RESOLVED", streamNonZero},
	RelayXoff: {"XOFF", streamNonZero}, RelayXon: {"XON", streamNonZero},
	RelayPaddingNegotiate: {"PADDING_NEGOTIATE", streamZero}, RelayPaddingNegotiated: {"PADDING_NEGOTIATED", streamZero},
}

func (c RelayCommand) String() string {
	if d, ok := relayCommands[c]; ok {
		return d.name
	}
	return fmt.Sprintf("RELAY_CMD(0x%02x)", uint8(c))
}

// Reserved reports whether c is in the payment or hidden-service range.
func (c RelayCommand) Reserved() bool { return c >= 0x40 && c <= 0x5F }

// checkStreamID enforces the stream ID rule of c; reserved commands are
// circuit level.
func (c RelayCommand) checkStreamID(id uint16) error {
	d, ok := relayCommands[c]
	switch {
	case !ok && !c.Reserved():
		return fmt.Errorf("%v: %w", c, ErrUnknownRelayCommand)
	case !ok || d.rule == streamZero:
		if id != 0 {
			return fmt.Errorf("%v with stream %d: %w", c, id, ErrStreamID)
		}
	case d.rule == streamNonZero && id == 0:
		return fmt.Errorf("%v with stream 0: %w", c, ErrStreamID)
	}
	return nil
}

// RelayCell is a decoded relay cell. Body aliases the buffer it was decoded
// from. Tag is the cell's tag (set when a layer delivers the cell, ignored
// by encoding); an authenticated SENDME echoes it.
type RelayCell struct {
	Command  RelayCommand
	StreamID uint16
	Body     []byte
	Tag      [TagLen]byte
}

// encodeRelay writes rc as a plaintext relay cell into p (PayloadLen bytes)
// with the check value zero (the layer sets it) and zero padding.
func encodeRelay(p []byte, rc RelayCell) error {
	if len(rc.Body) > MaxRelayBody {
		return fmt.Errorf("encode relay cell: body of %d bytes: %w", len(rc.Body), ErrRelayLength)
	}
	if err := rc.Command.checkStreamID(rc.StreamID); err != nil {
		return fmt.Errorf("encode relay cell: %w", err)
	}
	clear(p[:RelayHeaderLen])
	p[relayCmdOff] = byte(rc.Command)
	binary.BigEndian.PutUint16(p[streamIDOff:], rc.StreamID)
	binary.BigEndian.PutUint16(p[lengthOff:], uint16(len(rc.Body)))
	n := copy(p[RelayHeaderLen:], rc.Body)
	clear(p[RelayHeaderLen+n:])
	return nil
}

// decodeRelay strictly decodes a plaintext relay cell whose check value
// was already matched by its layer; Tag is left for the caller.
func decodeRelay(p []byte) (RelayCell, error) {
	if err := checkPayloadLen(p); err != nil {
		return RelayCell{}, fmt.Errorf("decode relay cell: %w", err)
	}
	rc := RelayCell{
		Command:  RelayCommand(p[relayCmdOff]),
		StreamID: binary.BigEndian.Uint16(p[streamIDOff:]),
	}
	if p[reservedOff]|p[reservedOff+1] != 0 {
		return RelayCell{}, fmt.Errorf("decode relay cell: reserved field: %w", ErrBadPadding)
	}
	n := int(binary.BigEndian.Uint16(p[lengthOff:]))
	if n > MaxRelayBody {
		return RelayCell{}, fmt.Errorf("decode relay cell: length %d: %w", n, ErrRelayLength)
	}
	if err := rc.Command.checkStreamID(rc.StreamID); err != nil {
		return RelayCell{}, fmt.Errorf("decode relay cell: %w", err)
	}
	if !allZero(p[RelayHeaderLen+n:]) {
		return RelayCell{}, fmt.Errorf("decode relay cell: %w", ErrBadPadding)
	}
	rc.Body = p[RelayHeaderLen : RelayHeaderLen+n : RelayHeaderLen+n]
	return rc, nil
}

// EncodeRelayPlaintext returns the PayloadLen-byte plaintext of rc with
// the check value zero. It is exported for tests, vectors and fuzzing; the
// wire form is always made by ClientCircuit.Seal or RelayCircuit.Originate.
func EncodeRelayPlaintext(rc RelayCell) ([]byte, error) {
	p := make([]byte, PayloadLen)
	return p, encodeRelay(p, rc)
}

// DecodeRelayPlaintext strictly decodes a plaintext relay cell, ignoring the
// check value.
func DecodeRelayPlaintext(p []byte) (RelayCell, error) { return decodeRelay(p) }
