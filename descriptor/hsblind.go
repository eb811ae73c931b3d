package descriptor

import (
	"crypto/ed25519"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"time"

	"filippo.io/edwards25519"
)

// Key blinding, after Tor's rend-spec-v3 appendix A. For period number n
// of length L seconds and identity key A = a·B:
//
//	h  = clamp(SHA3-256("obol hs blind v1\x00" || A || INT_8(n) || INT_8(L)))
//	A' = h·A                 (blinded public key)
//	a' = h·a mod ℓ           (blinded private scalar)
//	p' = SHA3-256("obol hs blind prefix v1\x00" || prefix)   (signing nonce key)
//
// where (a, prefix) is the RFC 8032 expansion of the identity seed. A' is
// a valid Ed25519 public key and a'·B = A', so signatures by the blinded
// key verify with crypto/ed25519. Without A, the blinded keys of two
// periods cannot be linked.
const (
	blindDomain       = "obol hs blind v1\x00"
	blindPrefixDomain = "obol hs blind prefix v1\x00"
	// DefaultPeriod is the length of a time period.
	DefaultPeriod = 24 * time.Hour
	// MinPeriod and MaxPeriod bound the period length a record may carry.
	MinPeriod = time.Minute
	MaxPeriod = 48 * time.Hour
)

var errPoint = errors.New("descriptor: not a curve point")

func pointFromBytes(b []byte) (*edwards25519.Point, error) {
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, errPoint
	}
	return p, nil
}

// Period is a time period: its number and length. Period n runs from
// n·L + L/2 to (n+1)·L + L/2 seconds after the Unix epoch, so with the
// default length periods switch at 12:00 UTC.
type Period struct {
	Num    uint64
	Length time.Duration
}

// PeriodAt returns the period of length l that contains t.
func PeriodAt(t time.Time, l time.Duration) Period {
	s := int64(l / time.Second)
	return Period{Num: uint64((t.Unix() - s/2) / s), Length: l}
}

// Start is the period's first instant.
func (p Period) Start() time.Time {
	s := int64(p.Length / time.Second)
	return time.Unix(int64(p.Num)*s+s/2, 0)
}

// Next is the following period.
func (p Period) Next() Period { return Period{Num: p.Num + 1, Length: p.Length} }

func (p Period) seconds() uint64 { return uint64(p.Length / time.Second) }

func blindFactor(pub []byte, p Period) *edwards25519.Scalar {
	h := sha3.New256()
	h.Write([]byte(blindDomain))
	h.Write(pub)
	h.Write(binary.BigEndian.AppendUint64(nil, p.Num))
	h.Write(binary.BigEndian.AppendUint64(nil, p.seconds()))
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h.Sum(nil))
	if err != nil {
		panic(err) // 32 bytes always fit
	}
	return s
}

// BlindPublicKey returns A' for the identity key pub in period p.
func BlindPublicKey(pub HSAddress, p Period) (HSAddress, error) {
	A, err := pointFromBytes(pub[:])
	if err != nil {
		return HSAddress{}, err
	}
	var out HSAddress
	copy(out[:], new(edwards25519.Point).ScalarMult(blindFactor(pub[:], p), A).Bytes())
	return out, nil
}

// BlindedKey is a service's signing key for one period.
type BlindedKey struct {
	Public HSAddress
	scalar *edwards25519.Scalar
	prefix [32]byte
}

// BlindPrivateKey derives the blinded signing key of identity key k for
// period p.
func BlindPrivateKey(k ed25519.PrivateKey, p Period) *BlindedKey {
	d := sha512.Sum512(k.Seed())
	a, err := edwards25519.NewScalar().SetBytesWithClamping(d[:32])
	if err != nil {
		panic(err)
	}
	pub := k.Public().(ed25519.PublicKey)
	bk := &BlindedKey{scalar: edwards25519.NewScalar().Multiply(blindFactor(pub, p), a)}
	copy(bk.Public[:], new(edwards25519.Point).ScalarBaseMult(bk.scalar).Bytes())
	h := sha3.New256()
	h.Write([]byte(blindPrefixDomain))
	h.Write(d[32:])
	copy(bk.prefix[:], h.Sum(nil))
	return bk
}

// Sign makes an RFC 8032 Ed25519 signature with the blinded scalar; it
// verifies with ed25519.Verify(Public, msg, sig).
func (k *BlindedKey) Sign(msg []byte) []byte {
	h := sha512.New()
	h.Write(k.prefix[:])
	h.Write(msg)
	r, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	h.Reset()
	h.Write(R)
	h.Write(k.Public[:])
	h.Write(msg)
	c, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	S := edwards25519.NewScalar().MultiplyAdd(c, k.scalar, r)
	return append(R, S.Bytes()...)
}

// HSIndex is the DHT identifier of replica r of the descriptor signed by
// blinded key A' in period p:
//
//	SHA3-256("obol hs index v1\x00" || A' || INT_8(r) || INT_8(L) || INT_8(n))
func HSIndex(blinded HSAddress, replica uint8, p Period) [32]byte {
	h := sha3.New256()
	h.Write([]byte("obol hs index v1\x00"))
	h.Write(blinded[:])
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(replica)))
	h.Write(binary.BigEndian.AppendUint64(nil, p.seconds()))
	h.Write(binary.BigEndian.AppendUint64(nil, p.Num))
	return [32]byte(h.Sum(nil))
}
