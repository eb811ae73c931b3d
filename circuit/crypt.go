package circuit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// A layer is one hop's encryption in one direction:
//
//   - an AES-256-CTR keystream that runs across every cell passing the hop
//     in that direction; each cell consumes exactly PayloadLen bytes;
//   - a cell counter n, the number of cells that went through the layer
//     before this one (both ends keep it in step with the keystream);
//   - a GMAC key: the tag of a cell addressed to (or sent by) this hop is
//     GMAC(macKey, nonce = 0x00000000 | uint64be(n), data = cell[18:]),
//     computed over the plaintext and then encrypted with the cell.
//
// A dropped, reordered or replayed cell does not decrypt, since its
// keystream position and counter are wrong.
type layer struct {
	s   cipher.Stream
	mac cipher.AEAD
	n   uint64
	// scratch space for tag computation, kept here so tags do not allocate
	nonce [macNonceLen]byte
	t     [TagLen]byte
}

// macNonceLen is the GCM standard nonce size.
const macNonceLen = 12

// maxLayerCells is the most cells one layer may process (spec §6.7).
const maxLayerCells = 1 << 32

// checkRoom refuses a cell once the layer has processed maxLayerCells.
func (l *layer) checkRoom() error {
	if l.n >= maxLayerCells {
		return ErrLayerExhausted
	}
	return nil
}

func newLayer(key [keyLen]byte, iv [ivLen]byte, macKey [keyLen]byte) layer {
	b, err := aes.NewCipher(key[:])
	if err != nil { // fixed key size: unreachable
		panic("circuit: aes: " + err.Error())
	}
	mb, err := aes.NewCipher(macKey[:])
	if err != nil {
		panic("circuit: aes: " + err.Error())
	}
	g, err := cipher.NewGCM(mb)
	if err != nil {
		panic("circuit: gcm: " + err.Error())
	}
	return layer{s: cipher.NewCTR(b, iv[:]), mac: g}
}

// xor advances the layer over one cell: it XORs the keystream over p in
// place and returns the cell's counter.
func (l *layer) xor(p []byte) uint64 {
	n := l.n
	l.n++
	l.s.XORKeyStream(p, p)
	return n
}

// tag computes the GMAC tag of plaintext relay cell p with counter n: it
// covers every byte after the tag field (command, stream ID, length, body
// and padding); the recognized field is checked to be zero on its own.
func (l *layer) tag(p []byte, n uint64) []byte {
	binary.BigEndian.PutUint64(l.nonce[4:], n)
	return l.mac.Seal(l.t[:0], l.nonce[:], nil, p[relayCmdOff:])
}

// seal tags plaintext p for this layer, encrypts it and returns the tag.
func (l *layer) seal(p []byte) (t [TagLen]byte) {
	copy(t[:], l.tag(p, l.n))
	copy(p[tagOff:tagOff+TagLen], t[:])
	l.xor(p)
	return t
}

// open decrypts p and reports whether it is addressed to (or sent by) this
// layer's hop: recognized field zero and a valid tag.
func (l *layer) open(p []byte) bool {
	n := l.xor(p)
	if p[recognizedOff]|p[recognizedOff+1] != 0 {
		return false
	}
	return subtle.ConstantTimeCompare(l.tag(p, n), p[tagOff:tagOff+TagLen]) == 1
}

// prg returns n bytes of AES-256-CTR keystream under key with a zero IV;
// used for the onion header blinding and the created-reply blinding, where
// each key is used once.
func prg(key [keyLen]byte, n int) []byte {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		panic("circuit: aes: " + err.Error())
	}
	out := make([]byte, n)
	cipher.NewCTR(b, make([]byte, ivLen)).XORKeyStream(out, out)
	return out
}

// xorInto sets dst[i] = a[i] ^ b[i] for the length of dst.
func xorInto(dst, a, b []byte) {
	subtle.XORBytes(dst, a[:len(dst)], b[:len(dst)])
}
