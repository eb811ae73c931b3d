package circuit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"

	"github.com/obolnet/obol/circuit/internal/cellcrypt"
)

// A layer is one hop's encryption in one direction: a tweakable wide-block
// cipher over the whole 1275-byte cell, chained from cell to cell, in the
// manner of Tor's Counter Galois Onion (specs/04-circuit.md §6). A cell is
// split into a left block L (16 bytes) and the right part R (1259 bytes).
// The relay's direction, mix, is
//
//	X  = GMAC(hashKey, nonce = 0, data = T || R)   the chained tweak T and all of R
//	L' = AES(blockKey, L XOR X) XOR X
//	R' = GCM-CTR(streamKey, nonce = L'[0:12], R)    AES-GCM's keystream, tag dropped
//	T  = L'                                        for the next cell
//
// so a change to any input bit changes L' unpredictably, hence the whole
// keystream over R', and every later cell's tweak: the cell and every cell
// after it come out as noise at every later hop. Only the client runs the
// inverse, unmix. The addressee recognises a cell by L' (after mix, or L
// after unmix) equal to its expected value N, a secret that both ends
// advance after every cell recognised at this layer:
//
//	N = AES(chainKey, C)   C = the cell's tag, its left block on the ciphertext side
//
// The keystream is AES-GCM's counter-mode body (counter blocks
// L'[0:12] || be32(2), be32(3), ...) and the hash AES-GCM's tag over
// additional data only; package cellcrypt computes both without
// allocating, in assembly where the CPU allows (§6.8).
type layer struct {
	block  cipher.Block   // AES-256 under blockKey: the wide block's left half
	hash   cellcrypt.GMAC // GMAC under hashKey
	stream cellcrypt.CTR  // AES-256-GCM's keystream under streamKey
	chain  cipher.Block   // AES-256 under chainKey: advances want
	t      [TagLen]byte   // tweak chain T
	want   [TagLen]byte   // expected left block N of the next recognised cell
	n      uint64         // cells processed, for the limit of §6.7
	// scratch space, kept here so that a cell does not allocate
	x, l [TagLen]byte
}

// gcmNonceLen is the GCM standard nonce size, the keystream's nonce.
const gcmNonceLen = cellcrypt.NonceSize

// maxLayerCells is the most cells one layer may process (spec §6.7).
const maxLayerCells = 1 << 32

// checkRoom refuses a cell once the layer has processed maxLayerCells.
func (l *layer) checkRoom() error {
	if l.n >= maxLayerCells {
		return ErrLayerExhausted
	}
	return nil
}

func mustAES(key []byte) cipher.Block {
	b, err := aes.NewCipher(key)
	if err != nil { // fixed key size: unreachable
		panic("circuit: aes: " + err.Error())
	}
	return b
}

func newLayer(k dirKeys) layer {
	l := layer{block: mustAES(k.BlockKey[:]), chain: mustAES(k.ChainKey[:]), t: k.Tweak, want: k.Want}
	l.hash.Init(&k.HashKey)
	l.stream.Init(&k.StreamKey)
	return l
}

// tweakHash sets l.x to GMAC(hashKey, 0, T || p[16:]); it overwrites p's
// left block, which the caller has saved.
func (l *layer) tweakHash(p []byte) {
	copy(p[:TagLen], l.t[:])
	l.hash.Sum(&l.x, p)
}

// keystream XORs the keystream of AES-GCM under streamKey with the nonce
// iv[0:12] over the right part of p.
func (l *layer) keystream(p []byte, iv []byte) {
	l.stream.XORKeyStream(p[TagLen:], p[TagLen:], (*[gcmNonceLen]byte)(iv[:gcmNonceLen]))
}

// mix is the relay's direction over cell p, in place. It returns the left
// block p had before (the tag of a forward cell addressed here).
func (l *layer) mix(p []byte) [TagLen]byte {
	in := [TagLen]byte(p[:TagLen])
	l.n++
	l.tweakHash(p)
	subtle.XORBytes(l.l[:], in[:], l.x[:])
	l.block.Encrypt(p[:TagLen], l.l[:])
	subtle.XORBytes(p[:TagLen], p[:TagLen], l.x[:])
	l.keystream(p, p[:TagLen])
	copy(l.t[:], p[:TagLen])
	return in
}

// unmix is the client's direction, the inverse of mix. It returns the left
// block p had before (the tag of a backward cell from this hop).
func (l *layer) unmix(p []byte) [TagLen]byte {
	out := [TagLen]byte(p[:TagLen])
	l.n++
	l.keystream(p, out[:])
	l.tweakHash(p)
	subtle.XORBytes(l.l[:], out[:], l.x[:])
	l.block.Decrypt(p[:TagLen], l.l[:])
	subtle.XORBytes(p[:TagLen], p[:TagLen], l.x[:])
	l.t = out
	return out
}

// recognized reports in constant time whether p's left block is the value
// this layer expects next.
func (l *layer) recognized(p []byte) bool {
	return subtle.ConstantTimeCompare(p[:TagLen], l.want[:]) == 1
}

// advance moves the expected value on after a cell with tag c was
// recognised (or originated) at this layer.
func (l *layer) advance(c [TagLen]byte) {
	l.chain.Encrypt(l.want[:], c[:])
}

// open runs mix over a forward cell and reports whether it is addressed to
// this hop, with its tag.
func (l *layer) open(p []byte) (bool, [TagLen]byte) {
	c := l.mix(p)
	if !l.recognized(p) {
		return false, c
	}
	l.advance(c)
	return true, c
}

// originate encrypts plaintext cell p from this hop (backward) and returns
// its tag.
func (l *layer) originate(p []byte) [TagLen]byte {
	copy(p[:TagLen], l.want[:])
	l.mix(p)
	c := [TagLen]byte(p[:TagLen])
	l.advance(c)
	return c
}

// sealFor turns plaintext cell p into what this hop must receive so that
// mix yields p (forward, addressed here) and returns its tag.
func (l *layer) sealFor(p []byte) [TagLen]byte {
	copy(p[:TagLen], l.want[:])
	l.unmix(p)
	c := [TagLen]byte(p[:TagLen])
	l.advance(c)
	return c
}

// openBack runs unmix over a backward cell at the client and reports
// whether this hop originated it, with its tag.
func (l *layer) openBack(p []byte) (bool, [TagLen]byte) {
	c := l.unmix(p)
	if !l.recognized(p) {
		return false, c
	}
	l.advance(c)
	return true, c
}

// prg returns n bytes of AES-256-CTR keystream under key with a zero IV;
// used for the onion header blinding and the created-reply blinding, where
// each key is used once.
func prg(key [keyLen]byte, n int) []byte {
	out := make([]byte, n)
	cipher.NewCTR(mustAES(key[:]), make([]byte, ivLen)).XORKeyStream(out, out)
	return out
}

// xorInto sets dst[i] = a[i] ^ b[i] for the length of dst.
func xorInto(dst, a, b []byte) {
	subtle.XORBytes(dst, a[:len(dst)], b[:len(dst)])
}
