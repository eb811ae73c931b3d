package payment

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
)

// TestNUT02Vectors derives every keyset id of tests/02-tests.md from its
// keys (and, for v2, the unit, fee and final expiry listed above them).
func TestNUT02Vectors(t *testing.T) {
	n := 0
	for _, b := range readMarkdownBlocks(t, "tests/02-tests.md") {
		if b.Lang != "json" {
			continue
		}
		var raw map[string]string
		if err := json.Unmarshal([]byte(b.Body), &raw); err != nil {
			t.Fatal(err)
		}
		keys := map[uint64]*btcec.PublicKey{}
		for a, k := range raw {
			amt, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			keys[amt] = mustPub(t, k)
		}
		id := proseField(b.Prose, "Keyset id:")
		var got string
		if strings.HasPrefix(id, "00") {
			got = KeysetIDV1(keys)
		} else {
			fee, _ := strconv.ParseUint(proseField(b.Prose, "Input fee ppk:"), 10, 64)
			exp, _ := strconv.ParseUint(proseField(b.Prose, "Final expiry:"), 10, 64)
			got = KeysetIDV2(keys, proseField(b.Prose, "Unit:"), fee, exp)
		}
		if got != id {
			t.Errorf("keyset id %s, want %s", got, id)
		}
		n++
	}
	if n != 5 {
		t.Errorf("checked %d keysets, want 5", n)
	}
}

// proseField returns the backquoted value after label in markdown prose.
func proseField(prose, label string) string {
	i := strings.Index(prose, label)
	if i < 0 {
		return ""
	}
	rest := prose[i+len(label):]
	start := strings.Index(rest, "`")
	end := strings.Index(rest[start+1:], "`")
	if start < 0 || end < 0 {
		return ""
	}
	return rest[start+1 : start+1+end]
}
