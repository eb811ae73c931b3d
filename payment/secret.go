package payment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Kinds of NUT-10 well-known secrets this package understands.
const (
	KindP2PK = "P2PK"
	KindHTLC = "HTLC"
)

// MaxSecretLen bounds secrets: longer ones are refused as malformed, never
// read as plain secrets.
const MaxSecretLen = 4096

var (
	// ErrNotWellKnown: the secret is not a NUT-10 well-known secret; it is a
	// plain secret that anyone holding the proof can spend.
	ErrNotWellKnown = errors.New("payment: not a well-known secret")
	// ErrMalformedSecret: the secret is a well-known secret whose
	// conditions are malformed; the proof is unspendable.
	ErrMalformedSecret = errors.New("payment: malformed spending condition")
)

// Secret is a parsed NUT-10 well-known secret:
//
//	[kind, {"nonce": <str>, "data": <str>, "tags": [[key, value, ...], ...]}]
type Secret struct {
	Kind  string
	Nonce string
	Data  string
	Tags  [][]string // nil when absent or null
}

type secretBody struct {
	Nonce *string    `json:"nonce"`
	Data  *string    `json:"data"`
	Tags  [][]string `json:"tags"`
}

// ParseSecret parses s as a well-known secret. It returns ErrNotWellKnown
// for anything that is not a JSON array of a kind and a body, and
// ErrMalformedSecret for a well-known secret with a broken body.
func ParseSecret(s string) (Secret, error) {
	if len(s) > MaxSecretLen {
		// Refused outright: read as a plain secret, a long locked one
		// would become spendable by anyone.
		return Secret{}, fmt.Errorf("%w: secret longer than %d bytes", ErrMalformedSecret, MaxSecretLen)
	}
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "[") {
		return Secret{}, ErrNotWellKnown
	}
	var parts []json.RawMessage
	if err := json.Unmarshal([]byte(t), &parts); err != nil || len(parts) != 2 {
		return Secret{}, ErrNotWellKnown
	}
	var sec Secret
	if err := json.Unmarshal(parts[0], &sec.Kind); err != nil {
		return Secret{}, ErrNotWellKnown
	}
	var body secretBody
	dec := json.NewDecoder(bytes.NewReader(parts[1]))
	if err := dec.Decode(&body); err != nil {
		return Secret{}, fmt.Errorf("%w: body: %v", ErrMalformedSecret, errKind(err))
	}
	if body.Nonce == nil || body.Data == nil {
		return Secret{}, fmt.Errorf("%w: missing nonce or data", ErrMalformedSecret)
	}
	sec.Nonce, sec.Data, sec.Tags = *body.Nonce, *body.Data, body.Tags
	return sec, nil
}

// errKind reduces a JSON error to its type, so that no part of a secret ends
// up in an error string.
func errKind(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error"
	case errors.As(err, &te):
		return "wrong type for " + te.Field
	default:
		return "invalid JSON"
	}
}

// String serialises the secret in the canonical form used for the
// deterministic channel outputs: no white space, keys in the order nonce,
// data, tags, and "tags":null when there are none.
func (s Secret) String() string {
	var b strings.Builder
	b.WriteString(`[`)
	writeJSONString(&b, s.Kind)
	b.WriteString(`,{"nonce":`)
	writeJSONString(&b, s.Nonce)
	b.WriteString(`,"data":`)
	writeJSONString(&b, s.Data)
	b.WriteString(`,"tags":`)
	if s.Tags == nil {
		b.WriteString("null")
	} else {
		tags, _ := json.Marshal(s.Tags) // [][]string always marshals
		b.Write(tags)
	}
	b.WriteString(`}]`)
	return b.String()
}

func writeJSONString(b *strings.Builder, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

// tag returns the values of the tag named key, whether it is present, and
// an error if it appears more than once.
func (s Secret) tag(key string) ([]string, bool, error) {
	var vals []string
	found := false
	for _, t := range s.Tags {
		if len(t) == 0 || t[0] != key {
			continue
		}
		if found {
			return nil, false, fmt.Errorf("%w: tag %q appears twice", ErrMalformedSecret, key)
		}
		found, vals = true, t[1:]
	}
	return vals, found, nil
}

// sameConditions reports whether two secrets have the same kind, data and
// tags (the SIG_ALL rule).
func sameConditions(a, b Secret) bool {
	if a.Kind != b.Kind || a.Data != b.Data || len(a.Tags) != len(b.Tags) {
		return false
	}
	for i := range a.Tags {
		if len(a.Tags[i]) != len(b.Tags[i]) {
			return false
		}
		for j := range a.Tags[i] {
			if a.Tags[i][j] != b.Tags[i][j] {
				return false
			}
		}
	}
	return true
}
