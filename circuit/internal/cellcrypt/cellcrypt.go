// Package cellcrypt holds the two bulk primitives of circuit protocol 2's
// relay-cell layer (specs/04-circuit.md §6): the AES-256 keystream with
// AES-GCM's counter layout for a nonce given per call, and GMAC (AES-GCM's
// tag over additional data only, zero nonce). Neither allocates per call.
//
// On amd64 with VAES and VPCLMULQDQ both run in assembly, on 512-bit
// registers with AVX-512 and on 256-bit ones with AVX2 only; on amd64
// without them, in assembly with AES-NI (eight blocks at a time) and
// PCLMULQDQ (Karatsuba, sixteen blocks per reduction).
// Everywhere else both are computed with the standard library's AES-GCM,
// with the same outputs.
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
	mode uint8       // which implementation runs: ctrGeneric ...
	gcm  cipher.AEAD // the generic path's AES-GCM
}

// The keystream's implementations, each needing more of the CPU than the
// one before.
const (
	ctrGeneric = iota // the standard library's AES-GCM
	ctrAESNI          // AES-NI, 8 blocks at a time
	ctrVAES256        // VAES on 256-bit registers, 16 blocks at a time
	ctrVAES512        // VAES on 512-bit registers, 16 blocks at a time
)

// GMAC's implementations, likewise.
const (
	gmacGeneric = iota // the standard library's AES-GCM
	gmacVec128         // PCLMULQDQ, AVX-encoded, Karatsuba, 16 blocks per reduction
	gmacVec256         // VPCLMULQDQ on 256-bit registers
	gmacVec512         // VPCLMULQDQ on 512-bit registers
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
	tab  [17][16]byte // H^17 ... H^1, for the assembly
	mask [16]byte     // AES(key, 0^96 || be32(1)), the tag mask of the zero nonce
	mode uint8        // gmacGeneric ...
	gcm  cipher.AEAD  // the generic path's AES-GCM
}

// Init sets g's key.
func (g *GMAC) Init(key *[KeySize]byte) {
	*g = GMAC{}
	m := gmacMode()
	if m == gmacGeneric {
		g.gcm = newGCM(key)
		return
	}
	g.mode = uint8(m)
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
	if g.mode == gmacGeneric {
		if g.gcm == nil {
			panic("cellcrypt: GMAC used before Init")
		}
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
