package circuit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"

	"golang.org/x/crypto/poly1305"
)

// A layer is one hop's encryption in one direction: an AES-256-CTR keystream
// that runs across every cell that passes the hop in that direction. Each
// cell consumes otkLen bytes of keystream as a one-time Poly1305 key, then
// PayloadLen bytes that are XORed over the relay cell. Both ends advance the
// stream for every cell, so the stream position is the cell's implicit
// sequence number: a reordered, dropped or replayed cell does not decrypt.
type layer struct {
	s cipher.Stream
}

const otkLen = 32

var zeroOTK [otkLen]byte

func newLayer(key [keyLen]byte, iv [ivLen]byte) layer {
	b, err := aes.NewCipher(key[:])
	if err != nil { // fixed key size: unreachable
		panic("circuit: aes: " + err.Error())
	}
	return layer{s: cipher.NewCTR(b, iv[:])}
}

// crypt advances the layer over one cell: it returns the cell's one-time
// MAC key and XORs the keystream over p in place.
func (l *layer) crypt(p []byte) (otk [otkLen]byte) {
	l.s.XORKeyStream(otk[:], zeroOTK[:])
	l.s.XORKeyStream(p, p)
	return otk
}

// tag computes the Poly1305 tag of a plaintext relay cell: it covers every
// byte after the tag field (command, stream ID, length, body and padding);
// the recognized field is checked to be zero on its own.
func tag(p []byte, otk *[otkLen]byte) (t [TagLen]byte) {
	poly1305.Sum(&t, p[relayCmdOff:], otk)
	return t
}

// setTag writes the tag of plaintext p into its tag field.
func setTag(p []byte, otk *[otkLen]byte) {
	t := tag(p, otk)
	copy(p[tagOff:tagOff+TagLen], t[:])
}

// recognized reports whether a decrypted p is addressed to the hop whose
// one-time key is otk: recognized field zero and a valid tag.
func recognized(p []byte, otk *[otkLen]byte) bool {
	if p[recognizedOff]|p[recognizedOff+1] != 0 {
		return false
	}
	t := tag(p, otk)
	return subtle.ConstantTimeCompare(t[:], p[tagOff:tagOff+TagLen]) == 1
}

// prg returns n bytes of AES-256-CTR keystream under key with a zero IV;
// used for the onion header filler and the created-reply blinding, where
// each key is used once.
func prg(key [keyLen]byte, n int) []byte {
	var iv [ivLen]byte
	l := newLayer(key, iv)
	out := make([]byte, n)
	l.s.XORKeyStream(out, out)
	return out
}

// xorInto sets dst[i] = a[i] ^ b[i] for the length of dst.
func xorInto(dst, a, b []byte) {
	subtle.XORBytes(dst, a[:len(dst)], b[:len(dst)])
}
