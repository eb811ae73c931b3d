package circuit

import (
	"crypto/hkdf"
	"crypto/sha256"
)

// Key derivation. All keys come from HKDF-SHA256 with fixed info labels:
//
//	header key  = HKDF(secret = seed,        salt = "",  info = labelHeader)  32
//	early keys  = HKDF(secret = seed,        salt = "",  info = labelEarly)   32 key | 16 IV | 32 MAC key
//	layer keys  = HKDF(secret = k_ir || k_ri, salt = h,  info = labelLayers)  see layerKeys
//
// seed is the 32-byte random value the client puts in a hop's routing
// instructions; k_ir and k_ri are the Noise transport keys after the NK
// handshake (initiator→responder, responder→initiator) and h is the Noise
// handshake hash. The Noise transport cipher states themselves are never
// used to encrypt: obol's layers need a size-preserving stream cipher.
const (
	labelHeader = "obol/circuit/v1 header"
	labelEarly  = "obol/circuit/v1 early"
	labelLayers = "obol/circuit/v1 layers"
	// prologueLabel starts the Noise prologue of every create.
	prologueLabel = "obol/circuit/v1 create"
)

// Key and IV sizes of AES-256-CTR.
const (
	keyLen = 32
	ivLen  = 16
)

// layerKeys are one hop's symmetric keys after its handshake.
//
// in this order:
type layerKeys struct {
	FwdKey   [keyLen]byte // client → relay layer: AES-256-CTR key
	FwdIV    [ivLen]byte  //   its initial counter block
	FwdMAC   [keyLen]byte //   its GMAC key
	BackKey  [keyLen]byte // relay → client layer
	BackIV   [ivLen]byte
	BackMAC  [keyLen]byte
	ReplyKey [keyLen]byte // blinds the CREATED reply stack
}

const layerKeysLen = 5*keyLen + 2*ivLen // 192

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
	var k layerKeys
	n := copy(k.FwdKey[:], b)
	n += copy(k.FwdIV[:], b[n:])
	n += copy(k.FwdMAC[:], b[n:])
	n += copy(k.BackKey[:], b[n:])
	n += copy(k.BackIV[:], b[n:])
	n += copy(k.BackMAC[:], b[n:])
	copy(k.ReplyKey[:], b[n:])
	return k
}

// deriveHeaderKey derives the key that blinds the rest of the onion at a hop.
func deriveHeaderKey(seed []byte) [keyLen]byte {
	return [keyLen]byte(mustHKDF(seed, nil, labelHeader, keyLen))
}

// deriveEarlyKeys derives the forward layer used for RELAY_EARLY (0-RTT)
// cells before the handshake completes.
func deriveEarlyKeys(seed []byte) layer {
	b := mustHKDF(seed, nil, labelEarly, 2*keyLen+ivLen)
	return newLayer([keyLen]byte(b[:keyLen]), [ivLen]byte(b[keyLen:keyLen+ivLen]), [keyLen]byte(b[keyLen+ivLen:]))
}
