package circuit

import (
	"crypto/hkdf"
	"crypto/sha256"
)

// Key derivation. All keys come from HKDF-SHA256 with fixed info labels:
//
//	header key  = HKDF(secret = seed,        salt = "",  info = labelHeader)  32
//	early keys  = HKDF(secret = seed,        salt = "",  info = labelEarly)   one dirKeys (160)
//	layer keys  = HKDF(secret = k_ir || k_ri, salt = h,  info = labelLayers)  see layerKeys (352)
//
// seed is the 32-byte random value the client puts in a hop's routing
// instructions; k_ir and k_ri are the Noise transport keys after the NK
// handshake (initiator→responder, responder→initiator) and h is the Noise
// handshake hash. The Noise transport cipher states themselves are never
// used to encrypt: obol's layers need a size-preserving cipher. The layer
// labels say v2: circuit protocol 2 replaced the AES-CTR+GMAC layer of
// protocol 1 with the wide-block layer of crypt.go. The prologue says v3:
// protocol 3 put the client's clock in the routing instructions, so that a
// relay of another version fails the handshake instead of misreading them.
// The header label is the handshake's since protocol 1.
const (
	labelHeader = "obol/circuit/v1 header"
	labelEarly  = "obol/circuit/v2 early"
	labelLayers = "obol/circuit/v2 layers"
	// prologueLabel starts the Noise prologue of every create.
	prologueLabel = "obol/circuit/v3 create"
)

// Key and IV sizes of AES-256 (CTR for the onion and reply blinding).
const (
	keyLen = 32
	ivLen  = 16
)

// dirKeys are the keys and initial chain values of one layer (one hop, one
// direction), in this order.
type dirKeys struct {
	BlockKey  [keyLen]byte // AES-256 key of the left block
	HashKey   [keyLen]byte // AES-256-GCM key whose GMAC hashes T || R
	StreamKey [keyLen]byte // AES-256-CTR key over R
	ChainKey  [keyLen]byte // AES-256 key advancing the expected value N
	Tweak     [TagLen]byte // initial tweak chain T
	Want      [TagLen]byte // initial expected value N
}

const dirKeysLen = 4*keyLen + 2*TagLen // 160

func parseDirKeys(b []byte) dirKeys {
	var k dirKeys
	n := copy(k.BlockKey[:], b)
	n += copy(k.HashKey[:], b[n:])
	n += copy(k.StreamKey[:], b[n:])
	n += copy(k.ChainKey[:], b[n:])
	n += copy(k.Tweak[:], b[n:])
	copy(k.Want[:], b[n:])
	return k
}

// layerKeys are one hop's symmetric keys after its handshake, in this order.
type layerKeys struct {
	Fwd      dirKeys      // client → relay layer
	Back     dirKeys      // relay → client layer
	ReplyKey [keyLen]byte // blinds the CREATED reply stack
}

const layerKeysLen = 2*dirKeysLen + keyLen // 352

func mustHKDF(secret, salt []byte, info string, n int) []byte {
	k, err := hkdf.Key(sha256.New, secret, salt, info, n)
	if err != nil { // only for n > 255*32, a programming error
		panic("circuit: hkdf: " + err.Error())
	}
	return k
}

// deriveLayerKeys derives a hop's layer keys from its finished handshake.
func deriveLayerKeys(kIR, kRI [32]byte, h []byte) layerKeys {
	ikm := append(kIR[:], kRI[:]...)
	b := mustHKDF(ikm, h, labelLayers, layerKeysLen)
	return layerKeys{
		Fwd:      parseDirKeys(b[:dirKeysLen]),
		Back:     parseDirKeys(b[dirKeysLen : 2*dirKeysLen]),
		ReplyKey: [keyLen]byte(b[2*dirKeysLen:]),
	}
}

// deriveHeaderKey derives the key that blinds the rest of the onion at a hop.
func deriveHeaderKey(seed []byte) [keyLen]byte {
	return [keyLen]byte(mustHKDF(seed, nil, labelHeader, keyLen))
}

// deriveEarlyKeys derives the forward layer used for RELAY_EARLY (0-RTT)
// cells before the handshake completes.
func deriveEarlyKeys(seed []byte) layer {
	return newLayer(parseDirKeys(mustHKDF(seed, nil, labelEarly, dirKeysLen)))
}
