package circuit

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

// The create onion. A CREATE carries a fixed-size onion of MaxHops slots;
// each slot is one Noise NK first message. Hop i reads the first slot with
// the rest of the onion as Noise prologue (so its AEAD tag authenticates
// everything behind it), learns the next hop and a seed, then shifts the
// rest forward and blinds it together with MaxHops-th slot of filler:
//
//	onion_i     = msg1_i (SlotLen) | rest_i (OnionLen - SlotLen)
//	onion_{i+1} = (rest_i | zero(SlotLen)) XOR PRG(headerKey(seed_i), OnionLen)
//
// The client computes the filler each hop will append, so every hop's
// prologue is predictable and authenticated, and every hop sees an onion of
// the same size whatever its position or the path length (Sphinx).
//
// Routing instructions (the Noise payload of each msg1):
//
//	kind (1) | peer ID length (1) | peer ID (MaxPeerIDLen, zero padded) | minute (4) | seed (32)
//
// The minute is the client's clock in whole minutes since the Unix epoch;
// a relay accepts it within MaxCreateSkew of its own (see ReplayCache).
const (
	// MaxHops is the longest path one create can build.
	MaxHops = 8
	// MaxPeerIDLen bounds the next hop's libp2p peer ID (every key type
	// libp2p has gives at most 42 bytes).
	MaxPeerIDLen = 60
	minuteLen    = 4
	seedLen      = 32
	routingLen   = 1 + 1 + MaxPeerIDLen + minuteLen + seedLen // 98
	noiseKeyLen  = 32
	noiseTagLen  = 16
	// SlotLen is one Noise NK msg1: ephemeral, encrypted routing, tag.
	SlotLen = noiseKeyLen + routingLen + noiseTagLen // 146
	// OnionLen is the size of the create onion at every hop.
	OnionLen = MaxHops * SlotLen // 1168
	// CreateLen is the meaningful prefix of a CREATE payload (the rest of the
	// payload is zero).
	CreateLen = 2 + OnionLen // 1170
)

// HandshakeType names the create format in the first two bytes of CREATE
// and CREATED payloads.
type HandshakeType uint16

// HandshakeOnionNK is the only handshake: a Sphinx-style onion of Noise NK
// messages (telescoping builds use it with one hop).
const HandshakeOnionNK HandshakeType = 0x0001

// routing kinds.
const (
	routeForward uint8 = 0x01 // forward the onion to the named peer
	routeLast    uint8 = 0x02 // the circuit ends here (for now)
)

// noiseSuite is the Noise cipher suite of every circuit handshake
// (Noise_NK_25519_ChaChaPoly_BLAKE2s; dh25519 only generates keys faster).
var noiseSuite = noise.NewCipherSuite(dh25519{}, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// routing is a hop's decrypted routing instructions.
type routing struct {
	kind   uint8
	next   []byte // peer ID when kind == routeForward
	minute uint32 // the client's clock (minuteOf)
	seed   [seedLen]byte
}

func (r routing) marshal() []byte {
	b := make([]byte, routingLen)
	b[0] = r.kind
	b[1] = byte(len(r.next))
	copy(b[2:], r.next)
	binary.BigEndian.PutUint32(b[2+MaxPeerIDLen:], r.minute)
	copy(b[2+MaxPeerIDLen+minuteLen:], r.seed[:])
	return b
}

func parseRouting(b []byte) (routing, error) {
	if len(b) != routingLen {
		return routing{}, fmt.Errorf("routing of %d bytes: %w", len(b), ErrPayloadTruncated)
	}
	r := routing{
		kind:   b[0],
		minute: binary.BigEndian.Uint32(b[2+MaxPeerIDLen:]),
		seed:   [seedLen]byte(b[2+MaxPeerIDLen+minuteLen:]),
	}
	n := int(b[1])
	switch {
	case r.kind == routeForward && (n == 0 || n > MaxPeerIDLen):
		return routing{}, ErrBadPeerID
	case r.kind == routeLast && n != 0:
		return routing{}, ErrBadPeerID
	case r.kind != routeForward && r.kind != routeLast:
		return routing{}, fmt.Errorf("routing kind %d: %w", r.kind, ErrRoutingKind)
	case !allZero(b[2+n : 2+MaxPeerIDLen]):
		return routing{}, ErrBadPadding
	}
	r.next = append([]byte(nil), b[2:2+n]...)
	return r, nil
}

// prologue is the Noise prologue of a hop: label, then the rest of its onion.
func prologue(rest []byte) []byte {
	return append([]byte(prologueLabel), rest...)
}

// initiatorState starts a client's NK handshake with one relay.
func initiatorState(rnd io.Reader, onionKey [32]byte, rest []byte) (*noise.HandshakeState, error) {
	return noise.NewHandshakeState(noise.Config{
		CipherSuite: noiseSuite, Random: rnd, Pattern: noise.HandshakeNK,
		Initiator: true, Prologue: prologue(rest), PeerStatic: onionKey[:],
	})
}

// responderState starts a relay's NK handshake under one onion key.
func responderState(rnd io.Reader, k OnionKey, rest []byte) (*noise.HandshakeState, error) {
	return noise.NewHandshakeState(noise.Config{
		CipherSuite: noiseSuite, Random: rnd, Pattern: noise.HandshakeNK,
		Prologue:      prologue(rest),
		StaticKeypair: noise.DHKey{Private: k.Private[:], Public: k.Public[:]},
	})
}

// fillers returns F_{n-1}: the tail that hops 1..n-1 append, as seen by
// hop n, computed from their header keys.
func fillers(headerKeys [][keyLen]byte) []byte {
	var f []byte
	for i, hk := range headerKeys {
		s := prg(hk, OnionLen)
		f = append(f, make([]byte, SlotLen)...)
		xorInto(f, f, s[OnionLen-(i+1)*SlotLen:])
	}
	return f
}

// peelOnion turns the rest of hop i's onion into hop i+1's onion.
func peelOnion(rest []byte, headerKey [keyLen]byte) []byte {
	next := make([]byte, OnionLen)
	copy(next, rest)
	xorInto(next, next, prg(headerKey, OnionLen))
	return next
}

// createPayload frames an onion as a CREATE payload.
func createPayload(onion []byte) []byte {
	p := make([]byte, PayloadLen)
	binary.BigEndian.PutUint16(p, uint16(HandshakeOnionNK))
	copy(p[2:], onion)
	return p
}

// parseCreate strictly decodes a CREATE payload into its onion.
func parseCreate(p []byte) ([]byte, error) {
	if err := checkPayloadLen(p); err != nil {
		return nil, fmt.Errorf("parse create: %w", err)
	}
	if t := HandshakeType(binary.BigEndian.Uint16(p)); t != HandshakeOnionNK {
		return nil, fmt.Errorf("parse create: type %d: %w", t, ErrBadHandshakeType)
	}
	if !allZero(p[CreateLen:]) {
		return nil, fmt.Errorf("parse create: %w", ErrBadPadding)
	}
	return p[2:CreateLen], nil
}
