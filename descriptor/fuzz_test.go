package descriptor

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bytes to Decode and Verify. Neither may panic;
// whatever decodes must re-encode to the same bytes (one encoding per
// descriptor), and whatever verifies must have passed every range check.
func FuzzDecode(f *testing.F) {
	v := buildVectors(f)
	rec, _ := hex.DecodeString(v.Record)
	f.Add(rec)
	for _, c := range v.Invalid {
		b, _ := hex.DecodeString(c.Record)
		f.Add(b)
	}
	now := time.Unix(vectorNow, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(u.Bytes(), b) {
			t.Fatal("decoded record does not keep its bytes")
		}
		r, err := u.Verify(now)
		if err != nil {
			return
		}
		if err := checkFields(r); err != nil {
			t.Fatalf("verified record fails field checks: %v", err)
		}
		if r.PeerID != u.ClaimedPeerID() {
			t.Fatal("verified peer ID differs from the claimed one")
		}
	})
}
