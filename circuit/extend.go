package circuit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Extend is the body of a telescoping EXTEND cell: the next hop and the
// CREATE message (handshake type and a one-hop onion) to send it.
//
//	peer ID length (1) | peer ID | create (CreateLen bytes)
type Extend struct {
	Next   []byte
	Create []byte
}

// MarshalBinary encodes an EXTEND body.
func (m Extend) MarshalBinary() ([]byte, error) {
	var err error
	switch {
	case len(m.Next) == 0 || len(m.Next) > MaxPeerIDLen:
		err = ErrBadPeerID
	case len(m.Create) != CreateLen:
		err = ErrPayloadTruncated
	}
	b := append([]byte{byte(len(m.Next))}, m.Next...)
	return checkBody("extend", append(b, m.Create...), err)
}

// ParseExtend strictly decodes an EXTEND body; the result does not alias b.
func ParseExtend(b []byte) (Extend, error) {
	r := &reader{b: b}
	n := int(r.u8())
	m := Extend{Next: bytes.Clone(r.take(n)), Create: bytes.Clone(r.take(CreateLen))}
	err := r.done()
	if err == nil && (n == 0 || n > MaxPeerIDLen) {
		err = ErrBadPeerID
	}
	if err == nil {
		_, err = parseCreate(createPayloadFromMsg(m.Create))
	}
	if err != nil {
		return Extend{}, fmt.Errorf("parse extend: %w", err)
	}
	return m, nil
}

// Extended is the body of an EXTENDED cell: the next hop's CREATED
// message (CreatedLen bytes).
type Extended struct {
	Created []byte
}

// MarshalBinary encodes an EXTENDED body.
func (m Extended) MarshalBinary() ([]byte, error) {
	if len(m.Created) != CreatedLen {
		return nil, fmt.Errorf("marshal extended: %w", ErrPayloadTruncated)
	}
	return append([]byte(nil), m.Created...), nil
}

// ParseExtended strictly decodes an EXTENDED body; the result does not
// alias b.
func ParseExtended(b []byte) (Extended, error) {
	switch {
	case len(b) < CreatedLen:
		return Extended{}, fmt.Errorf("parse extended: %w", ErrPayloadTruncated)
	case len(b) > CreatedLen:
		return Extended{}, fmt.Errorf("parse extended: %w", ErrPayloadTrailing)
	}
	if t := HandshakeType(binary.BigEndian.Uint16(b)); t != HandshakeOnionNK {
		return Extended{}, fmt.Errorf("parse extended: type %d: %w", t, ErrBadHandshakeType)
	}
	return Extended{Created: bytes.Clone(b)}, nil
}

// createPayloadFromMsg pads a CreateLen-byte message to a CREATE payload.
func createPayloadFromMsg(msg []byte) []byte {
	p := make([]byte, PayloadLen)
	copy(p, msg)
	return p
}

// Extension is a telescoping extension in flight.
type Extension struct {
	hop pendingHop
}

// Extend prepares a one-hop onion for next, made at now by the client's
// clock, and returns the payload of a RELAY cell carrying EXTEND, addressed
// to the current last hop.
func (c *ClientCircuit) Extend(rnd io.Reader, now time.Time, next HopSpec) (*Extension, []byte, error) {
	if c.Len() >= MaxHops {
		return nil, nil, fmt.Errorf("extend: %w", ErrPathLength)
	}
	onion, hops, err := buildOnion(rnd, now, []HopSpec{next})
	if err != nil {
		return nil, nil, fmt.Errorf("extend: %w", err)
	}
	body, err := Extend{Next: next.PeerID, Create: createPayload(onion)[:CreateLen]}.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	p, err := c.Seal(c.Len()-1, RelayCell{Command: RelayExtend, Body: body})
	return &Extension{hop: hops[0]}, p, err
}

// FinishExtend completes an extension with the body of the EXTENDED cell
// that the last hop sent; the circuit gains a hop.
func (c *ClientCircuit) FinishExtend(x *Extension, extended []byte) error {
	m, err := ParseExtended(extended)
	if err != nil {
		return err
	}
	k, err := finishHop(x.hop.hs, m.Created[2:2+ReplySlotLen])
	if err != nil {
		return fmt.Errorf("finish extend: %w", err)
	}
	c.addHop(k)
	return nil
}
