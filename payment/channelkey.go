package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"

	"github.com/btcsuite/btcd/btcec/v2"
)

// ChannelKey derives the sender key of the channel numbered counter from a
// wallet seed: the first valid scalar
// HMAC-SHA256(seed, "obol_channel_key_v1" || u64be(counter) || retry).
// A wallet uses a fresh counter per channel, so channels do not share a
// key, and can re-derive every key after a crash from the seed alone.
func ChannelKey(seed []byte, counter uint64) (*btcec.PrivateKey, error) {
	mac := hmac.New(sha256.New, seed)
	msg := binary.BigEndian.AppendUint64([]byte("obol_channel_key_v1"), counter)
	for retry := 0; retry < maxRetries; retry++ {
		mac.Reset()
		mac.Write(msg)
		mac.Write([]byte{byte(retry)})
		if k, err := scalarFromBytes([32]byte(mac.Sum(nil))); err == nil {
			return k, nil
		}
	}
	return nil, ErrP2BK
}
