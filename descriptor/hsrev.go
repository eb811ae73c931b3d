package descriptor

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha3"
	"encoding/binary"
	"fmt"
	"time"
)

// Revision counters. A record's revision must grow from one publication
// to the next under one blinded key (the DHT keeps the highest), yet a
// clear-text counter or timestamp would be the same in the records of
// two periods published at one moment, and link them. As in Tor's
// rend-spec-v3 (§ revision counter, an order-preserving encryption), the
// revision is
//
//	x   = seconds from the start of the period before the record's period
//	      to the publication (≥ 0, < 3·L while the record may be published)
//	kr  = SHA3-256("obol hs revision key v1\x00" || a' || prefix')
//	KS  = AES-256-CTR(key kr, IV 0¹²⁸) keystream
//	rev = Σ_{i=0..x} (1 + LE16(KS[2i : 2i+2]))
//
// The key depends on the blinded private key, so a DHT node that sees A'
// can neither invert rev into a time nor compare revisions of two
// blinded keys; rev is strictly increasing in x for one blinded key.
const (
	hsRevisionDomain = "obol hs revision key v1\x00"
	// MaxRevisionStep bounds x: three of the longest periods.
	MaxRevisionStep = 3 * uint64(MaxPeriod/time.Second)
)

// RevisionStep is x for a record of period p published at now: the
// seconds since the start of the period before p, 0 if now is earlier.
func RevisionStep(p Period, now time.Time) uint64 {
	base := p.Start().Add(-p.Length)
	if now.Before(base) {
		return 0
	}
	return uint64(now.Sub(base) / time.Second)
}

func (k *BlindedKey) revisionKey() []byte {
	h := sha3.New256()
	h.Write([]byte(hsRevisionDomain))
	h.Write(k.scalar.Bytes())
	h.Write(k.prefix[:])
	return h.Sum(nil)
}

// Revision is the encrypted revision counter for step x (above). Two
// steps x < y of one key give Revision(x) < Revision(y).
func (k *BlindedKey) Revision(x uint64) (uint64, error) {
	if x > MaxRevisionStep {
		return 0, fmt.Errorf("%w: revision step %d", ErrField, x)
	}
	blk, _ := aes.NewCipher(k.revisionKey())
	ctr := cipher.NewCTR(blk, make([]byte, aes.BlockSize))
	buf := make([]byte, 4096)
	var rev uint64
	for left := x + 1; left > 0; {
		n := min(left, uint64(len(buf)/2))
		b := buf[:2*n]
		clear(b)
		ctr.XORKeyStream(b, b)
		for i := range n {
			rev += 1 + uint64(binary.LittleEndian.Uint16(b[2*i:]))
		}
		left -= n
	}
	return rev, nil
}
