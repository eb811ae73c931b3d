package descriptor

import (
	"crypto/sha3"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Proof of work for introductions (after Tor's proposal 327, with a hash
// in place of Equi-X). A service under load states an effort in its
// descriptor (PoWParams); a client proves it spent that many hashes on
// this one introduction:
//
//	h = SHA3-256("obol hs pow v1\x00" || seed || A || cookie || nonce || INT_4(effort))
//	valid  iff  INT_4(h[0:4]) · effort ≤ 2³² − 1
//
// so that about `effort` nonces must be tried. The seed comes from the
// descriptor (it changes with every publication, which bounds
// precomputation), A is the service's identity key, and the cookie binds
// the proof to one rendezvous. Effort 0
// is no proof. The service serves introductions by effort, highest first.
const (
	powDomain   = "obol hs pow v1\x00"
	PoWNonceLen = 16
	PoWSeedLen  = 32
	// MaxPoWEffort bounds the effort a descriptor may ask for.
	MaxPoWEffort = 1 << 24
)

// ErrPoW: the proof of work does not hold for its effort.
var ErrPoW = errors.New("descriptor: proof of work does not hold")

// PoWParams are what a service asks of clients (a zero Effort asks
// nothing).
type PoWParams struct {
	Seed   [PoWSeedLen]byte
	Effort uint32
}

// PoW is a client's proof for one introduction.
type PoW struct {
	Effort uint32
	Nonce  [PoWNonceLen]byte
}

func powValue(seed [PoWSeedLen]byte, id HSAddress, cookie [CookieLen]byte, nonce []byte, effort uint32) uint64 {
	h := sha3.New256()
	h.Write([]byte(powDomain))
	h.Write(seed[:])
	h.Write(id[:])
	h.Write(cookie[:])
	h.Write(nonce)
	h.Write(binary.BigEndian.AppendUint32(nil, effort))
	return uint64(binary.BigEndian.Uint32(h.Sum(nil)))
}

// Verify checks the proof for the service's seed and identity key and
// the introduction's cookie.
func (w PoW) Verify(seed [PoWSeedLen]byte, id HSAddress, cookie [CookieLen]byte) error {
	if w.Effort == 0 {
		return nil
	}
	if powValue(seed, id, cookie, w.Nonce[:], w.Effort)*uint64(w.Effort) > 1<<32-1 {
		return ErrPoW
	}
	return nil
}

// SolvePoW searches a proof of the given effort, starting from a random
// nonce; stop, if it returns true, ends the search with an error (e.g. a
// context that ended). Effort 0 returns at once.
func SolvePoW(rand io.Reader, seed [PoWSeedLen]byte, id HSAddress, cookie [CookieLen]byte, effort uint32, stop func() bool) (PoW, error) {
	w := PoW{Effort: effort}
	if effort == 0 {
		return w, nil
	}
	if effort > MaxPoWEffort {
		return w, fmt.Errorf("%w: effort %d", ErrField, effort)
	}
	if _, err := io.ReadFull(rand, w.Nonce[:]); err != nil {
		return w, err
	}
	for i := 0; ; i++ {
		if powValue(seed, id, cookie, w.Nonce[:], effort)*uint64(effort) <= 1<<32-1 {
			return w, nil
		}
		if i%4096 == 0 && stop != nil && stop() {
			return w, errors.New("descriptor: proof of work stopped")
		}
		for j := range w.Nonce { // next nonce
			w.Nonce[j]++
			if w.Nonce[j] != 0 {
				break
			}
		}
	}
}
