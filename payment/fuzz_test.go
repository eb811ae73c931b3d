package payment

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzSecret feeds secrets and witnesses from the network (a mint's inputs,
// a relay's funding proofs) through parsing and condition checks: no
// panic, and a well-known secret that parses re-parses from its canonical
// form to the same value.
func FuzzSecret(f *testing.F) {
	for _, b := range readMarkdownBlocks(f, "tests/11-test.md") {
		var p Proof
		if json.Unmarshal([]byte(b.Body), &p) == nil && p.Secret != "" {
			f.Add(p.Secret, p.Witness)
		}
	}
	f.Fuzz(func(t *testing.T, secret, witness string) {
		s, err := ParseSecret(secret)
		if err != nil {
			if !errors.Is(err, ErrNotWellKnown) && !errors.Is(err, ErrMalformedSecret) {
				t.Fatalf("unexpected error %v", err)
			}
		} else if again, err := ParseSecret(s.String()); err != nil || !sameConditions(s, again) || again.Nonce != s.Nonce {
			t.Fatalf("canonical form does not re-parse: %v", err)
		}
		_ = VerifyProof(Proof{Secret: secret, Witness: witness}, vectorNow)
		_ = VerifySwap([]Proof{{Secret: secret, Witness: witness}, {Secret: secret}}, []BlindedMessage{{Amount: 1, B: witness}}, vectorNow)
	})
}
