// Package cellcrypt holds the two bulk primitives of circuit protocol 2's
// relay-cell layer (specs/04-circuit.md §6): the AES-256 keystream with
// AES-GCM's counter layout for a nonce given per call, and GMAC (AES-GCM's
// tag over additional data only, zero nonce). Neither allocates per call.
//
// On amd64 with AVX-512, VAES and VPCLMULQDQ both run in assembly; the
// keystream falls back to AES-NI eight blocks at a time on amd64 without
// them. Everywhere else, and when the assembly is not usable, both are
// computed with the standard library's AES-GCM, with the same outputs.
package cellcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"sync"
)

const (
	KeySize   = 32 // AES-256
	NonceSize = 12 // GCM's standard nonce
	TagSize   = 16
)

// forceGeneric makes Init choose the standard-library path; tests set it
// to cover that path on machines where the assembly runs.
var forceGeneric bool

// CTR is the keystream of AES-256-GCM under one key: for nonce N the
// counter blocks are N || be32(2), N || be32(3), ... (the last 32 bits
// incremented modulo 2^32), so XORKeyStream's output is the ciphertext
// body that AES-GCM's Seal gives for that nonce.
type CTR struct {
	rk   [240]byte   // AES-256 encryption round keys, for the assembly
	mode uint8       // ctrGeneric, ctrAESNI or ctrAVX512
	gcm  cipher.AEAD // the generic path's AES-GCM
}

const (
	ctrGeneric = iota
	ctrAESNI
	ctrVAES
)

// Init sets c's key.
func (c *CTR) Init(key *[KeySize]byte) {
	*c = CTR{}
	switch m := ctrMode(); m {
	case ctrGeneric:
		c.gcm = newGCM(key)
	default:
		c.mode = uint8(m)
		expandKey256(key, &c.rk)
	}
}

// XORKeyStream sets dst[:len(src)] to src XOR the keystream for nonce.
// dst and src must overlap entirely or not at all.
func (c *CTR) XORKeyStream(dst, src []byte, nonce *[NonceSize]byte) {
	if len(dst) < len(src) {
		panic("cellcrypt: output smaller than input")
	}
	if len(src) == 0 {
		return
	}
	if c.mode == ctrGeneric {
		if c.gcm == nil {
			panic("cellcrypt: CTR used before Init")
		}
		genericCTR(c.gcm, dst[:len(src)], src, nonce)
		return
	}
	var iv [16]byte
	copy(iv[:], nonce[:])
	iv[15] = 2
	ctrAsm(c, &iv, dst[:len(src)], src)
}

// GMAC is AES-256-GCM's tag over additional data only, with the all-zero
// nonce, under one key.
type GMAC struct {
	tab  [31][16]byte // H^17 ... H^1, then zeros, for the assembly
	mask [16]byte     // AES(key, 0^96 || be32(1)), the tag mask of the zero nonce
	gcm  cipher.AEAD  // the generic path's AES-GCM; nil when the assembly runs
}

// Init sets g's key.
func (g *GMAC) Init(key *[KeySize]byte) {
	*g = GMAC{}
	if !gmacAsmOK() {
		g.gcm = newGCM(key)
		return
	}
	b, err := aes.NewCipher(key[:])
	if err != nil { // fixed key size: unreachable
		panic("cellcrypt: " + err.Error())
	}
	var h, j0 [16]byte
	b.Encrypt(h[:], h[:])
	j0[15] = 1
	b.Encrypt(g.mask[:], j0[:])
	ghashInit(&h, &g.tab)
}

var zeroNonce [NonceSize]byte

// Sum sets out to the tag of data.
func (g *GMAC) Sum(out *[TagSize]byte, data []byte) {
	if g.gcm != nil {
		g.gcm.Seal(out[:0], zeroNonce[:], nil, data)
		return
	}
	gmacAsm(g, out, data)
}

func newGCM(key *[KeySize]byte) cipher.AEAD {
	b, err := aes.NewCipher(key[:])
	if err != nil { // fixed key size: unreachable
		panic("cellcrypt: " + err.Error())
	}
	g, err := cipher.NewGCM(b)
	if err != nil { // standard sizes: unreachable
		panic("cellcrypt: " + err.Error())
	}
	return g
}

// scratch holds AES-GCM's output (ciphertext and the dropped tag) on the
// generic path.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

func genericCTR(g cipher.AEAD, dst, src []byte, nonce *[NonceSize]byte) {
	bp := scratch.Get().(*[]byte)
	if cap(*bp) < len(src)+TagSize {
		*bp = make([]byte, 0, len(src)+TagSize)
	}
	out := g.Seal((*bp)[:0], nonce[:], src, nil)
	copy(dst, out[:len(src)])
	scratch.Put(bp)
}
