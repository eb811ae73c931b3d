package payment

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
)

func mustHex(t testing.TB, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatalf("hex %q: %v", h, err)
	}
	return b
}

func mustPub(t testing.TB, h string) *btcec.PublicKey {
	t.Helper()
	k, err := parsePubKeyHex(h)
	if err != nil {
		t.Fatalf("pubkey %q: %v", h, err)
	}
	return k
}

func mustPriv(t testing.TB, h string) *btcec.PrivateKey {
	t.Helper()
	k, err := parseScalarHex(h)
	if err != nil {
		t.Fatalf("scalar %q: %v", h, err)
	}
	return k
}

func pubHex(k *btcec.PublicKey) string { return hex.EncodeToString(k.SerializeCompressed()) }

// shellBlocks returns the shell blocks of a vectors file whose prose
// contains heading.
func shellBlocks(t *testing.T, file, heading string) []map[string]string {
	var out []map[string]string
	on := false
	for _, b := range readMarkdownBlocks(t, file) {
		if strings.Contains(b.Prose, "#") {
			on = strings.Contains(b.Prose, heading)
		}
		if on && b.Lang == "shell" {
			out = append(out, shellValues(b.Body))
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no blocks under %q", file, heading)
	}
	return out
}

func TestNUT00HashToCurve(t *testing.T) {
	n := 0
	for _, m := range shellBlocks(t, "tests/00-tests.md", "Hash-to-curve") {
		for k, msg := range m {
			if !strings.HasPrefix(k, "Message") {
				continue
			}
			want := m[strings.Replace(k, "Message", "Point", 1)]
			Y, err := HashToCurve(mustHex(t, msg))
			if err != nil || pubHex(Y) != want {
				t.Errorf("hash_to_curve(%s) = %v, %v; want %s", msg, Y, err, want)
			}
			n++
		}
	}
	if n != 3 {
		t.Errorf("checked %d hash_to_curve vectors, want 3", n)
	}
}

func TestNUT00BlindAndSign(t *testing.T) {
	n := 0
	for _, m := range shellBlocks(t, "tests/00-tests.md", "Blinded messages") {
		for k, x := range m {
			if !strings.HasPrefix(k, "x") {
				continue
			}
			suffix := strings.TrimPrefix(k, "x")
			B, err := BlindMessage(string(mustHex(t, x)), mustPriv(t, m["r"+suffix]))
			if err != nil || pubHex(B) != m["B_"+suffix] {
				t.Errorf("B_ = %v, %v; want %s", B, err, m["B_"+suffix])
			}
			n++
		}
	}
	for _, m := range shellBlocks(t, "tests/00-tests.md", "Blinded signatures") {
		for k, key := range m {
			if !strings.HasPrefix(k, "mint private key") {
				continue
			}
			suffix := strings.TrimPrefix(k, "mint private key")
			C := SignBlinded(mustPub(t, m["B_"+suffix]), mustPriv(t, key))
			if pubHex(C) != m["C_"+suffix] {
				t.Errorf("C_ = %s; want %s", pubHex(C), m["C_"+suffix])
			}
			n++
		}
	}
	if n != 4 {
		t.Errorf("checked %d vectors, want 4", n)
	}
}

func TestNUT00RoundTrip(t *testing.T) {
	k := mustPriv(t, "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f")
	r := mustPriv(t, "99fce58439fc37412ab3468b73db0569322588f62fb3a49182d67e23d877824a")
	B, err := BlindMessage("secret", r)
	if err != nil {
		t.Fatal(err)
	}
	C := Unblind(SignBlinded(B, k), r, k.PubKey())
	if !VerifyUnblinded("secret", k, C) {
		t.Fatal("unblinded signature does not verify")
	}
	if VerifyUnblinded("other", k, C) {
		t.Fatal("signature verifies on another secret")
	}
}

func TestNUT12Vectors(t *testing.T) {
	m := shellBlocks(t, "tests/12-tests.md", "hash_e")
	h := HashE(mustPub(t, m[0]["R1"]), mustPub(t, m[0]["R2"]), mustPub(t, m[0]["K"]), mustPub(t, m[0]["C_"]))
	if got := hex.EncodeToString(h[:]); got != m[1]["hash(R1, R2, K, C_)"] {
		t.Errorf("hash_e = %s; want %s", got, m[1]["hash(R1, R2, K, C_)"])
	}

	d := shellBlocks(t, "tests/12-tests.md", "Deterministic nonce")
	a := mustPriv(t, d[0]["a"])
	if pubHex(a.PubKey()) != d[0]["A"] {
		t.Fatal("A != a·G")
	}
	B, C := mustPub(t, d[0]["B_"]), mustPub(t, d[0]["C_"])
	e, s, err := GenerateDLEQ(a, B, C)
	if err != nil || hex.EncodeToString(e[:]) != d[1]["e"] || hex.EncodeToString(s[:]) != d[1]["s"] {
		t.Errorf("DLEQ = %x, %x, %v; want %s, %s", e, s, err, d[1]["e"], d[1]["s"])
	}
	if !VerifyDLEQ(e, s, a.PubKey(), B, C) {
		t.Error("generated DLEQ does not verify")
	}

	var blind BlindSignature
	var proof Proof
	var keys []map[string]string
	for _, b := range readMarkdownBlocks(t, "tests/12-tests.md") {
		switch {
		case b.Lang == "shell" && strings.Contains(b.Body, "A:"):
			keys = append(keys, shellValues(b.Body))
		case b.Lang == "json" && strings.Contains(b.Body, `"C_"`):
			if err := json.Unmarshal([]byte(b.Body), &blind); err != nil {
				t.Fatal(err)
			}
		case b.Lang == "json":
			if err := json.Unmarshal([]byte(b.Body), &proof); err != nil {
				t.Fatal(err)
			}
		}
	}
	A := mustPub(t, keys[len(keys)-2]["A"])
	if err := VerifyBlindSignatureDLEQ(blind, mustPub(t, keys[len(keys)-2]["B_"]), A); err != nil {
		t.Errorf("BlindSignature DLEQ: %v", err)
	}
	if err := VerifyProofDLEQ(proof, mustPub(t, keys[len(keys)-1]["A"])); err != nil {
		t.Errorf("Proof DLEQ: %v", err)
	}
	proof.Amount, proof.Secret = 2, "other"
	if VerifyProofDLEQ(proof, A) == nil {
		t.Error("DLEQ verified on another secret")
	}
}

func TestNUT13Vectors(t *testing.T) {
	var mnemonic, idV2 string
	type set struct{ secrets, rs map[string]string }
	var sets []set
	for _, b := range readMarkdownBlocks(t, "tests/13-tests.md") {
		if b.Lang != "json" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(b.Body), &m); err != nil {
			t.Fatal(err)
		}
		if v, ok := m["mnemonic"].(string); ok {
			mnemonic = v
		}
		if i := strings.Index(b.Prose, "keyset ID `01"); i >= 0 {
			idV2, _, _ = strings.Cut(b.Prose[i+len("keyset ID `"):], "`")
		}
		str := map[string]string{}
		for k, v := range m {
			if s, ok := v.(string); ok {
				str[k] = s
			}
		}
		switch {
		case str["secret_0"] != "":
			sets = append(sets, set{secrets: str})
		case str["r_0"] != "":
			sets[len(sets)-1].rs = str
		}
	}
	seed, err := SeedFromMnemonic(mnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"009a1f293253e41e", idV2}
	if len(sets) != 2 || len(idV2) != 66 {
		t.Fatalf("read %d vector sets, v2 id %q", len(sets), idV2)
	}
	for v, st := range sets {
		for i := uint32(0); i < 5; i++ {
			n := strconv.Itoa(int(i))
			secret, r, err := DeriveSecret(seed, ids[v], i)
			if err != nil {
				t.Fatal(err)
			}
			if secret != st.secrets["secret_"+n] {
				t.Errorf("v%d secret_%d = %s; want %s", v+1, i, secret, st.secrets["secret_"+n])
			}
			if got := hex.EncodeToString(r.Serialize()); got != st.rs["r_"+n] {
				t.Errorf("v%d r_%d = %s; want %s", v+1, i, got, st.rs["r_"+n])
			}
		}
	}
}

func TestNUT28Vectors(t *testing.T) {
	var in, rs, blinded, std, neg map[string]string
	var proof Proof
	for _, b := range readMarkdownBlocks(t, "tests/28-tests.md") {
		switch {
		case b.Lang == "json":
			if err := json.Unmarshal([]byte(b.Body), &proof); err != nil {
				t.Fatal(err)
			}
		case strings.Contains(b.Body, "Receiver long-lived"):
			in = shellValues(b.Body)
		case strings.Contains(b.Body, "r0:"):
			rs = shellValues(b.Body)
		case strings.Contains(b.Prose, "Blinded Public Keys"):
			blinded = shellValues(b.Body)
		case strings.Contains(b.Body, "skStd"):
			std, neg = splitStdNeg(b.Body)
		}
	}
	e, p := mustPriv(t, in["e"]), mustPriv(t, in["p"])
	E, P := mustPub(t, in["E"]), mustPub(t, in["P"])
	zx := ECDHX(e, P)
	if zx != ECDHX(p, E) {
		t.Fatal("ECDH not symmetric")
	}
	wantZx := shellBlocks(t, "tests/28-tests.md", "Shared Secret")[0]["Zx"]
	if hex.EncodeToString(zx[:]) != wantZx {
		t.Fatalf("Zx = %x; want %s", zx, wantZx)
	}
	for i := 0; i <= 10; i++ {
		n := strconv.Itoa(i)
		r, err := P2BKTweak(zx, byte(i))
		if err != nil || hex.EncodeToString(r.Serialize()) != rs["r"+n] {
			t.Errorf("r%d = %x, %v; want %s", i, r.Serialize(), err, rs["r"+n])
			continue
		}
		Pb := AddTweak(P, r)
		if pubHex(Pb) != blinded[n] {
			t.Errorf("P'%d = %s; want %s", i, pubHex(Pb), blinded[n])
		}
		k, err := BlindedPrivKey(p, P, r)
		if err != nil {
			t.Fatal(err)
		}
		// p·G has odd y here, so the negated derivation applies.
		if got := hex.EncodeToString(k.Serialize()); got != neg[n] {
			t.Errorf("sk%d = %s; want negated %s (standard %s)", i, got, neg[n], std[n])
		}
		if k.PubKey().X().Cmp(Pb.X()) != 0 {
			t.Errorf("sk%d does not match P'%d", i, i)
		}
	}
	// The example proof is locked to P'0.
	s, err := ParseSecret(proof.Secret)
	if err != nil || s.Data != blinded["0"] || proof.P2PKE != in["E"] {
		t.Errorf("example proof: %v, data %s", err, s.Data)
	}
}

// splitStdNeg splits the derived-keys block into its standard and negated
// halves.
func splitStdNeg(body string) (std, neg map[string]string) {
	i := strings.Index(body, "# skNeg")
	return shellValues(body[:i]), shellValues(body[i:])
}
