package payment

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// Token is a NUT-00 token: proofs of one mint and unit, to hand to someone
// else. It is bearer money: never log it.
type Token struct {
	Mint   string
	Unit   string
	Memo   string
	Proofs []Proof
}

// Token limits.
const (
	// MaxTokenLen bounds a serialized token.
	MaxTokenLen = 256 << 10
	// MaxTokenProofs bounds the proofs of a token.
	MaxTokenProofs = 1000
)

// ErrToken: a token string or blob that does not decode.
var ErrToken = errors.New("payment: malformed token")

// TokenV4 (CBOR) field layout of NUT-00; keys are single letters and hex
// values are byte strings.
type tokenV4 struct {
	T []tokenV4Keyset `cbor:"t"`
	D string          `cbor:"d,omitempty"`
	M string          `cbor:"m"`
	U string          `cbor:"u"`
}

type tokenV4Keyset struct {
	I []byte         `cbor:"i"`
	P []tokenV4Proof `cbor:"p"`
}

type tokenV4Proof struct {
	A  uint64       `cbor:"a"`
	S  string       `cbor:"s"`
	C  []byte       `cbor:"c"`
	D  *tokenV4DLEQ `cbor:"d,omitempty"`
	W  string       `cbor:"w,omitempty"`
	PE []byte       `cbor:"pe,omitempty"`
}

type tokenV4DLEQ struct {
	E []byte `cbor:"e"`
	S []byte `cbor:"s"`
	R []byte `cbor:"r"`
}

var tokenDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  8,
		MaxArrayElements: MaxTokenProofs,
		MaxMapPairs:      16,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// EncodeV4Raw is the binary TokenV4: "craw" "B" || CBOR.
func (t *Token) EncodeV4Raw() ([]byte, error) {
	v := tokenV4{D: t.Memo, M: t.Mint, U: t.Unit}
	index := map[string]int{}
	for i, p := range t.Proofs {
		k, ok := index[p.ID]
		if !ok {
			id, err := hex.DecodeString(p.ID)
			if err != nil {
				return nil, fmt.Errorf("%w: proof %d: keyset id", ErrToken, i)
			}
			k, index[p.ID] = len(v.T), len(v.T)
			v.T = append(v.T, tokenV4Keyset{I: id})
		}
		tp, err := toV4Proof(p)
		if err != nil {
			return nil, fmt.Errorf("%w: proof %d: %v", ErrToken, i, err)
		}
		v.T[k].P = append(v.T[k].P, tp)
	}
	b, err := cbor.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrToken, err)
	}
	return append([]byte("crawB"), b...), nil
}

func toV4Proof(p Proof) (tokenV4Proof, error) {
	tp := tokenV4Proof{A: p.Amount, S: p.Secret, W: p.Witness}
	var err error
	if tp.C, err = hex.DecodeString(p.C); err != nil {
		return tp, errors.New("C")
	}
	if p.P2PKE != "" {
		if tp.PE, err = hex.DecodeString(p.P2PKE); err != nil {
			return tp, errors.New("p2pk_e")
		}
	}
	if d := p.DLEQ; d != nil {
		tp.D = &tokenV4DLEQ{}
		for dst, h := range map[*[]byte]string{&tp.D.E: d.E, &tp.D.S: d.S, &tp.D.R: d.R} {
			if *dst, err = hex.DecodeString(h); err != nil {
				return tp, errors.New("DLEQ")
			}
		}
	}
	return tp, nil
}

// EncodeV4 is the TokenV4 string: "cashuB" || base64url(CBOR), unpadded.
func (t *Token) EncodeV4() (string, error) {
	raw, err := t.EncodeV4Raw()
	if err != nil {
		return "", err
	}
	return "cashuB" + base64.RawURLEncoding.EncodeToString(raw[5:]), nil
}

// DecodeToken decodes a "cashuA" (V3, JSON) or "cashuB" (V4, CBOR) token
// string; base64 padding is optional.
func DecodeToken(s string) (*Token, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxTokenLen || len(s) < 6 {
		return nil, fmt.Errorf("%w: length", ErrToken)
	}
	body, err := decodeBase64URL(s[6:])
	if err != nil {
		return nil, fmt.Errorf("%w: base64", ErrToken)
	}
	switch s[:6] {
	case "cashuA":
		return decodeV3(body)
	case "cashuB":
		return decodeV4(body)
	}
	return nil, fmt.Errorf("%w: prefix", ErrToken)
}

// DecodeTokenRaw decodes a binary TokenV4 ("crawB" || CBOR).
func DecodeTokenRaw(b []byte) (*Token, error) {
	if len(b) > MaxTokenLen || len(b) < 5 || string(b[:5]) != "crawB" {
		return nil, fmt.Errorf("%w: raw prefix or length", ErrToken)
	}
	return decodeV4(b[5:])
}

func decodeBase64URL(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	return base64.RawURLEncoding.DecodeString(s)
}

func decodeV4(b []byte) (*Token, error) {
	var v tokenV4
	if err := tokenDecMode.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: CBOR", ErrToken)
	}
	t := &Token{Mint: v.M, Unit: v.U, Memo: v.D}
	for _, ks := range v.T {
		for _, p := range ks.P {
			if len(t.Proofs) == MaxTokenProofs {
				return nil, fmt.Errorf("%w: too many proofs", ErrToken)
			}
			t.Proofs = append(t.Proofs, fromV4Proof(hex.EncodeToString(ks.I), p))
		}
	}
	return t, t.check()
}

func fromV4Proof(id string, p tokenV4Proof) Proof {
	out := Proof{Amount: p.A, ID: id, Secret: p.S, C: hex.EncodeToString(p.C), Witness: p.W}
	if len(p.PE) > 0 {
		out.P2PKE = hex.EncodeToString(p.PE)
	}
	if p.D != nil {
		out.DLEQ = &DLEQProof{E: hex.EncodeToString(p.D.E), S: hex.EncodeToString(p.D.S), R: hex.EncodeToString(p.D.R)}
	}
	return out
}

// tokenV3 is the JSON layout of a V3 token.
type tokenV3 struct {
	Token []tokenV3Mint `json:"token"`
	Unit  string        `json:"unit,omitempty"`
	Memo  string        `json:"memo,omitempty"`
}

type tokenV3Mint struct {
	Mint   string  `json:"mint"`
	Proofs []Proof `json:"proofs"`
}

func decodeV3(b []byte) (*Token, error) {
	var v tokenV3
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: JSON", ErrToken)
	}
	if len(v.Token) != 1 {
		return nil, fmt.Errorf("%w: V3 tokens of %d mints", ErrToken, len(v.Token))
	}
	t := &Token{Mint: v.Token[0].Mint, Unit: v.Unit, Memo: v.Memo, Proofs: v.Token[0].Proofs}
	if t.Unit == "" {
		t.Unit = "sat"
	}
	return t, t.check()
}

// EncodeV3 is the deprecated TokenV3 string ("cashuA" || base64url(JSON)).
func (t *Token) EncodeV3() (string, error) {
	b, err := json.Marshal(tokenV3{Token: []tokenV3Mint{{Mint: t.Mint, Proofs: t.Proofs}}, Unit: t.Unit, Memo: t.Memo})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToken, err)
	}
	return "cashuA" + base64.RawURLEncoding.EncodeToString(b), nil
}

func (t *Token) check() error {
	if t.Mint == "" || len(t.Proofs) == 0 || len(t.Proofs) > MaxTokenProofs {
		return fmt.Errorf("%w: no mint or no proofs", ErrToken)
	}
	return nil
}
