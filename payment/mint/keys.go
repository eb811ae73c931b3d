package mint

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
)

// keyset is one of the mint's keysets, with its private keys.
type keyset struct {
	payment.Keyset
	active bool
	priv   map[uint64]*btcec.PrivateKey
}

// newKeyset derives the keys of amounts 2^0 … 2^(order-1) for a unit from
// the seed: HMAC-SHA256(seed, "obol-test-mint|" unit "|" u32be(index) u64be(amount)),
// rehashed until it is a valid scalar.
func newKeyset(seed []byte, unit string, index uint32, order int, feePPK uint64) (*keyset, error) {
	ks := &keyset{
		Keyset: payment.Keyset{Unit: unit, InputFeePPK: feePPK, Keys: map[uint64]*btcec.PublicKey{}},
		active: true,
		priv:   map[uint64]*btcec.PrivateKey{},
	}
	for i := 0; i < order; i++ {
		a := uint64(1) << i
		k, err := deriveKey(seed, unit, index, a)
		if err != nil {
			return nil, err
		}
		ks.priv[a], ks.Keys[a] = k, k.PubKey()
	}
	ks.ID = payment.KeysetIDV2(ks.Keys, unit, feePPK, 0)
	return ks, nil
}

func deriveKey(seed []byte, unit string, index uint32, amount uint64) (*btcec.PrivateKey, error) {
	mac := hmac.New(sha256.New, seed)
	msg := []byte("obol-test-mint|" + unit + "|")
	msg = binary.BigEndian.AppendUint32(msg, index)
	msg = binary.BigEndian.AppendUint64(msg, amount)
	for retry := 0; retry < 16; retry++ {
		mac.Reset()
		mac.Write(msg)
		mac.Write([]byte{byte(retry)})
		var s btcec.ModNScalar
		if overflow := s.SetByteSlice(mac.Sum(nil)); !overflow && !s.IsZero() {
			return btcec.PrivKeyFromScalar(&s), nil
		}
	}
	return nil, fmt.Errorf("mint: no key for %s/%d", unit, amount)
}

// fee is the NUT-02 fee of spending inputs: ceil(sum of input_fee_ppk / 1000).
func fee(sumPPK uint64) uint64 { return (sumPPK + 999) / 1000 }
