package payment

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// vectorNow is the time at which the NUT-11 vectors are checked: after
// every past locktime in them, before every future one.
var vectorNow = time.Unix(1_790_000_000, 0)

type swapVector struct {
	Quote   *string          `json:"quote"`
	Inputs  []Proof          `json:"inputs"`
	Outputs []BlindedMessage `json:"outputs"`
}

// expectValid reads the verdict of a NUT-11 vector from the prose before it.
func expectValid(prose string) bool {
	p := strings.ToLower(prose)
	for _, bad := range []string{"invalid", "**not** spendable", "failing"} {
		if strings.Contains(p, bad) {
			return false
		}
	}
	return true
}

func TestNUT11Vectors(t *testing.T) {
	blocks := readMarkdownBlocks(t, "tests/11-test.md")
	var valid, invalid, messages int
	for i, b := range blocks {
		if b.Lang != "json" {
			continue
		}
		want := expectValid(b.Prose)
		var err error
		switch {
		case strings.Contains(b.Body, `"inputs"`):
			var v swapVector
			if e := json.Unmarshal([]byte(b.Body), &v); e != nil {
				t.Fatalf("block %d: %v", i, e)
			}
			if v.Quote != nil {
				err = VerifyMelt(v.Inputs, v.Outputs, *v.Quote, vectorNow)
			} else {
				err = VerifySwap(v.Inputs, v.Outputs, vectorNow)
			}
			if i+1 < len(blocks) && strings.Contains(blocks[i+1].Prose, "msg_to_sign") {
				messages++
				checkSigAllMessage(t, v, blocks[i+1].Body, blocks[i+1:])
			}
		default:
			var p Proof
			if e := json.Unmarshal([]byte(b.Body), &p); e != nil {
				t.Fatalf("block %d: %v", i, e)
			}
			if p.Witness == "" {
				continue // the bare proof that the next vectors sign
			}
			err = VerifyProof(p, vectorNow)
		}
		if want {
			valid++
		} else {
			invalid++
		}
		if (err == nil) != want {
			t.Errorf("block %d (%q): valid=%v, got err=%v", i, firstLine(b.Prose), want, err)
		}
	}
	// The file holds 14 valid and 5 invalid vectors and two messages; a
	// change in that count means the file changed or the reader broke.
	if valid != 14 || invalid != 5 || messages != 2 {
		t.Errorf("read %d valid, %d invalid vectors and %d messages; want 14, 5, 2", valid, invalid, messages)
	}
}

// checkSigAllMessage compares the aggregated message with the published
// msg_to_sign and its SHA256.
func checkSigAllMessage(t *testing.T, v swapVector, want string, rest []mdBlock) {
	t.Helper()
	var got string
	if v.Quote != nil {
		got = MeltMessage(v.Inputs, v.Outputs, *v.Quote)
	} else {
		got = SwapMessage(v.Inputs, v.Outputs)
	}
	if got != strings.TrimSpace(want) {
		t.Errorf("SIG_ALL message:\n got %s\nwant %s", got, want)
	}
	h := sha256.Sum256([]byte(got))
	if len(rest) > 1 && !strings.Contains(rest[1].Prose, hex.EncodeToString(h[:])) {
		t.Errorf("sha256(msg_to_sign) %x not in the vectors' prose", h)
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// A SIG_ALL signature covers the outputs: changing one output amount or B_
// (for example, taking outputs from another commitment) must fail.
func TestSigAllOutputsBound(t *testing.T) {
	blocks := readMarkdownBlocks(t, "tests/11-test.md")
	for _, b := range blocks {
		if !strings.Contains(b.Prose, "valid sig_all signature") {
			continue
		}
		var v swapVector
		if err := json.Unmarshal([]byte(b.Body), &v); err != nil {
			t.Fatal(err)
		}
		if err := VerifySwap(v.Inputs, v.Outputs, vectorNow); err != nil {
			t.Fatalf("vector itself: %v", err)
		}
		alt := append([]BlindedMessage(nil), v.Outputs...)
		alt[0].B = "03afe7c87e32d436f0957f1d70a2bca025822a84a8623e3a33aed0a167016e0ca5"
		if err := VerifySwap(v.Inputs, alt, vectorNow); err == nil {
			t.Error("swap with a replaced output verified")
		}
		alt = append(alt[:0], v.Outputs...)
		alt[0].Amount = 1
		if err := VerifySwap(v.Inputs, append(alt, alt[0]), vectorNow); err == nil {
			t.Error("swap with split outputs verified")
		}
		return
	}
	t.Fatal("vector not found")
}

func TestMalformedConditions(t *testing.T) {
	const k1 = "0249098aa8b9d2fbec49ff8598feb17b592b986e62319a4fa488a3dc36387157a7"
	const k1odd = "0349098aa8b9d2fbec49ff8598feb17b592b986e62319a4fa488a3dc36387157a7"
	const k2 = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
	tests := []struct {
		name string
		tags [][]string
		ok   bool
	}{
		{"none", nil, true},
		{"sigflag all", [][]string{{"sigflag", "SIG_ALL"}}, true},
		{"unknown sigflag", [][]string{{"sigflag", "SIG_SOME"}}, false},
		{"sigflag twice", [][]string{{"sigflag", "SIG_ALL"}, {"sigflag", "SIG_ALL"}}, false},
		{"n_sigs 2 of 2", [][]string{{"pubkeys", k2}, {"n_sigs", "2"}}, true},
		{"n_sigs 3 of 2", [][]string{{"pubkeys", k2}, {"n_sigs", "3"}}, false},
		{"n_sigs zero", [][]string{{"n_sigs", "0"}}, false},
		{"n_sigs text", [][]string{{"n_sigs", "two"}}, false},
		{"dup key other parity", [][]string{{"pubkeys", k1odd}}, false},
		{"key in both pathways", [][]string{{"refund", k1odd}}, true},
		{"dup refund key", [][]string{{"refund", k2, k2}}, false},
		{"n_sigs_refund no refund", [][]string{{"n_sigs_refund", "1"}}, false},
		{"n_sigs_refund 2 of 2", [][]string{{"refund", k1, k2}, {"n_sigs_refund", "2"}}, true},
		{"bad pubkey", [][]string{{"pubkeys", "02zz"}}, false},
		{"uppercase key", [][]string{{"pubkeys", strings.ToUpper(k2)}}, true},
		{"locktime garbage is permanent", [][]string{{"locktime", "soon"}}, true},
		{"empty tag", [][]string{{"pubkeys"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Secret{Kind: KindP2PK, Nonce: "00", Data: k1, Tags: tc.tags}
			parsed, err := ParseSecret(s.String())
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseConditions(parsed)
			if (err == nil) != tc.ok {
				t.Errorf("ok=%v, err=%v", tc.ok, err)
			}
		})
	}
}

func TestParseSecretPlain(t *testing.T) {
	for _, s := range []string{"407915bc212be61a77e3e6d2aeb4c727980bda51cd06a6afc29e2861768a7837", "[1,2,3]", "[\"P2PK\"]", "["} {
		if _, err := ParseSecret(s); err != ErrNotWellKnown {
			t.Errorf("%q: %v", s, err)
		}
	}
	if _, err := ParseSecret(`["P2PK",{"nonce":"00"}]`); err == nil {
		t.Error("secret without data parsed")
	}
}

func TestLongSecretRefused(t *testing.T) {
	long := `["P2PK",{"nonce":"` + strings.Repeat("0", MaxSecretLen) + `","data":"02","tags":null}]`
	if err := VerifyProof(Proof{Secret: long}, vectorNow); err == nil {
		t.Fatal("over-long locked secret spendable without a signature")
	}
}
