package payment

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNUT00TokenV3(t *testing.T) {
	blocks := readMarkdownBlocks(t, "tests/00-tests.md")
	var decoded, valid, invalid int
	for i, b := range blocks {
		switch {
		case b.Lang == "json" && strings.Contains(b.Body, `"token"`):
			var v tokenV3
			if err := json.Unmarshal([]byte(b.Body), &v); err != nil {
				t.Fatal(err)
			}
			want := strings.TrimSpace(blocks[i+1].Body)
			tok, err := DecodeToken(want)
			if err != nil || tok.Mint != v.Token[0].Mint || tok.Memo != v.Memo || len(tok.Proofs) != len(v.Token[0].Proofs) || tok.Proofs[1] != v.Token[0].Proofs[1] {
				t.Fatalf("decode V3: %v", err)
			}
			if enc, err := tok.EncodeV3(); err != nil || enc != want {
				t.Errorf("encode V3:\n got %s\nwant %s", enc, want)
			}
			decoded++
		case b.Lang == "shell" && strings.Contains(b.Prose, "incorrectly formatted"):
			for _, line := range strings.Split(b.Body, "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					if _, err := DecodeToken(line); err == nil {
						t.Errorf("bad token decoded: %.20s…", line)
					}
					invalid++
				}
			}
		case b.Lang == "shell" && strings.Contains(b.Body, "cashuA"):
			for _, line := range strings.Split(b.Body, "\n") {
				if line = strings.TrimSpace(line); strings.HasPrefix(line, "cashuA") {
					if _, err := DecodeToken(line); err != nil {
						t.Errorf("valid token: %v", err)
					}
					valid++
				}
			}
		}
	}
	if decoded != 1 || invalid != 2 || valid != 3 {
		t.Errorf("checked %d/%d/%d V3 vectors, want 1/2/3", decoded, invalid, valid)
	}
}

// v4FromVectorJSON reads the vectors' diagnostic notation (h'..' byte
// strings, trailing commas) into a Token.
func v4FromVectorJSON(t *testing.T, body string) *Token {
	t.Helper()
	s := strings.NewReplacer("h'", `"`, "',", `",`, "'\n", "\"\n").Replace(body)
	for _, tr := range []string{",\n}", ",\n]"} {
		for strings.Contains(strings.ReplaceAll(s, " ", ""), tr) {
			s = removeTrailingCommas(s)
		}
	}
	var v struct {
		T []struct {
			I string `json:"i"`
			P []struct {
				A uint64 `json:"a"`
				S string `json:"s"`
				C string `json:"c"`
			} `json:"p"`
		} `json:"t"`
		D, M, U string
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("vector JSON: %v\n%s", err, s)
	}
	tok := &Token{Mint: v.M, Unit: v.U, Memo: v.D}
	for _, ks := range v.T {
		for _, p := range ks.P {
			tok.Proofs = append(tok.Proofs, Proof{Amount: p.A, ID: ks.I, Secret: p.S, C: p.C})
		}
	}
	return tok
}

func removeTrailingCommas(s string) string {
	lines := strings.Split(s, "\n")
	for i := 0; i+1 < len(lines); i++ {
		next := strings.TrimSpace(lines[i+1])
		if strings.HasSuffix(strings.TrimSpace(lines[i]), ",") && (strings.HasPrefix(next, "}") || strings.HasPrefix(next, "]")) {
			lines[i] = strings.TrimSuffix(strings.TrimRight(lines[i], " "), ",")
		}
	}
	return strings.Join(lines, "\n")
}

func TestNUT00TokenV4(t *testing.T) {
	blocks := readMarkdownBlocks(t, "tests/00-tests.md")
	n := 0
	for i, b := range blocks {
		if b.Lang != "json" || !strings.Contains(b.Body, `"t":`) {
			continue
		}
		tok := v4FromVectorJSON(t, b.Body)
		if i+1 == len(blocks) {
			// The raw form follows the last block, in prose: h'…'.
			raw, _ := os.ReadFile(filepath.Join(nutsDir, "tests", "00-tests.md"))
			text := string(raw)
			text = text[strings.LastIndex(text, "raw binary"):]
			start := strings.Index(text, "h'") + 2
			want := text[start : start+strings.Index(text[start:], "'")]
			raw, err := tok.EncodeV4Raw()
			if err != nil || hex.EncodeToString(raw) != want {
				t.Errorf("raw V4:\n got %x\nwant %s", raw, want)
			}
			back, err := DecodeTokenRaw(mustHex(t, want))
			if err != nil || back.Memo != tok.Memo || back.Proofs[0] != tok.Proofs[0] {
				t.Errorf("decode raw V4: %v", err)
			}
			n++
			continue
		}
		want := strings.TrimSpace(blocks[i+1].Body)
		got, err := tok.EncodeV4()
		if err != nil || strings.TrimRight(got, "=") != strings.TrimRight(want, "=") {
			t.Errorf("V4:\n got %s\nwant %s", got, want)
		}
		back, err := DecodeToken(want)
		if err != nil || back.Mint != tok.Mint || len(back.Proofs) != len(tok.Proofs) {
			t.Fatalf("decode V4: %v", err)
		}
		for j := range tok.Proofs {
			if back.Proofs[j] != tok.Proofs[j] {
				t.Errorf("proof %d differs after decoding", j)
			}
		}
		n++
	}
	if n != 3 {
		t.Errorf("checked %d V4 vectors, want 3", n)
	}
}

func TestTokenRoundTripWithDLEQAndWitness(t *testing.T) {
	tok := &Token{Mint: "http://m", Unit: "msat", Proofs: []Proof{{
		Amount: 8, ID: "00ad268c4d1f5826", Secret: "s", C: strings.Repeat("02", 33),
		Witness: `{"signatures":[]}`, P2PKE: strings.Repeat("03", 33),
		DLEQ: &DLEQProof{E: strings.Repeat("aa", 32), S: strings.Repeat("bb", 32), R: strings.Repeat("cc", 32)},
	}}}
	s, err := tok.EncodeV4()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeToken(s)
	if err != nil || back.Proofs[0].DLEQ == nil || *back.Proofs[0].DLEQ != *tok.Proofs[0].DLEQ || back.Proofs[0].P2PKE != tok.Proofs[0].P2PKE || back.Unit != "msat" {
		t.Fatalf("round trip: %v", err)
	}
}

func FuzzDecodeToken(f *testing.F) {
	for _, b := range readMarkdownBlocks(f, "tests/00-tests.md") {
		for _, line := range strings.Split(b.Body, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "cashu") {
				f.Add(strings.TrimSpace(line))
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := DecodeToken(s)
		if err != nil {
			if !errors.Is(err, ErrToken) {
				t.Fatalf("error outside ErrToken: %v", err)
			}
			return
		}
		// A decoded V4 token re-encodes to a token that decodes the same.
		enc, err := tok.EncodeV4()
		if err != nil {
			return // e.g. a V3 proof whose C is not hex
		}
		again, err := DecodeToken(enc)
		if err != nil || len(again.Proofs) != len(tok.Proofs) {
			t.Fatalf("re-encoded token: %v", err)
		}
		raw, _ := tok.EncodeV4Raw()
		if _, err := DecodeTokenRaw(raw); err != nil {
			t.Fatalf("raw: %v", err)
		}
	})
}
