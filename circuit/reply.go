package circuit

import (
	"encoding/binary"
	"fmt"
)

// The created reply. Every hop's Noise NK second message (ephemeral and an
// empty payload's tag) is ReplySlotLen bytes; the reply has room for
// MaxHops of them and the same size at every hop:
//
//	reply_n = msg2_n | random(ReplyLen - ReplySlotLen)                 (last hop)
//	reply_i = msg2_i | (reply_{i+1}[:ReplyLen-ReplySlotLen] XOR PRG(replyKey_i))
//
// The client reads msg2_1, derives replyKey_1, unblinds the rest, reads
// msg2_2, and so on. The bytes each hop drops are always padding because a
// path has at most MaxHops hops.
const (
	// ReplySlotLen is one Noise NK msg2 with an empty payload.
	ReplySlotLen = noiseKeyLen + noiseTagLen // 48
	// ReplyLen is the reply stack carried by CREATED.
	ReplyLen = MaxHops * ReplySlotLen // 384
	// CreatedLen is the meaningful prefix of a CREATED payload.
	CreatedLen = 2 + ReplyLen // 386
)

// createdPayload frames a reply stack as a CREATED payload.
func createdPayload(reply []byte) []byte {
	p := make([]byte, PayloadLen)
	binary.BigEndian.PutUint16(p, uint16(HandshakeOnionNK))
	copy(p[2:], reply)
	return p
}

// parseCreated strictly decodes a CREATED payload into its reply stack.
func parseCreated(p []byte) ([]byte, error) {
	if err := checkPayloadLen(p); err != nil {
		return nil, fmt.Errorf("parse created: %w", err)
	}
	if t := HandshakeType(binary.BigEndian.Uint16(p)); t != HandshakeOnionNK {
		return nil, fmt.Errorf("parse created: type %d: %w", t, ErrBadHandshakeType)
	}
	if !allZero(p[CreatedLen:]) {
		return nil, fmt.Errorf("parse created: %w", ErrBadPadding)
	}
	return p[2:CreatedLen], nil
}

// wrapReply is what a middle hop does with the reply from its next hop.
func wrapReply(msg2 []byte, next []byte, replyKey [keyLen]byte) []byte {
	out := make([]byte, ReplyLen)
	copy(out, msg2)
	xorInto(out[ReplySlotLen:], next, prg(replyKey, ReplyLen-ReplySlotLen))
	return out
}

// unwrapReply is the client's inverse of wrapReply for one hop.
func unwrapReply(rest []byte, replyKey [keyLen]byte) []byte {
	out := make([]byte, len(rest))
	xorInto(out, rest, prg(replyKey, ReplyLen-ReplySlotLen))
	return out
}
