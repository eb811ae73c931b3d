package descriptor

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"testing"
	"time"
)

// FuzzDecodeHS: decoding and verifying arbitrary bytes never panics, and
// whatever verifies decrypts only under the one right address.
func FuzzDecodeHS(f *testing.F) {
	v := buildHSVectors(f)
	rec, _ := hex.DecodeString(v.Record)
	f.Add(rec)
	authRec, _ := hex.DecodeString(v.Auth.Record)
	f.Add(authRec)
	now := time.Unix(vectorNow, 0)
	addr := hsAddr(hsTestKey(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeHS(b)
		if err != nil {
			return
		}
		r, err := u.Verify(now)
		if err != nil {
			return
		}
		if c, err := r.Decrypt(addr); err == nil && (len(c.Intros) == 0 || len(c.Intros) > MaxIntros) {
			t.Fatal("decrypted content out of range")
		}
	})
}

// FuzzHSMessages feeds every hidden-service message decoder; whatever
// decodes re-encodes to the same bytes.
func FuzzHSMessages(f *testing.F) {
	v := buildHSVectors(f)
	for _, m := range v.Messages {
		b, _ := hex.DecodeString(m)
		f.Add(b)
	}
	now := time.Unix(vectorNow, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseEstablishIntro(b, now); err == nil && !bytes.Equal(m.Marshal(), b) {
			t.Fatal("ESTABLISH_INTRO round trip")
		}
		if m, err := ParseIntroduce(b); err == nil && !bytes.Equal(m.Marshal(), b) {
			t.Fatal("INTRODUCE round trip")
		}
		if m, err := ParseIntroPayload(b); err == nil && !bytes.Equal(m.Marshal(), b) {
			t.Fatal("intro payload round trip")
		}
		if m, err := ParseRendezvous1(b); err == nil && !bytes.Equal(m.Marshal(), b) {
			t.Fatal("RENDEZVOUS1 round trip")
		}
		if m, err := ParseHSFetched(b); err == nil && !bytes.Equal(m.Marshal(), b) {
			t.Fatal("HS_FETCHED round trip")
		}
		ParseCookie(b)
		ParseRendezvous2(b)
		ParseHSFetch(b)
	})
}

// FuzzParseHSAddress: parsing never panics and a parsed address prints
// back to its canonical form.
func FuzzParseHSAddress(f *testing.F) {
	f.Add(hsAddr(hsTestKey(1)).String())
	f.Add("x.obol")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseHSAddress(s)
		if err != nil {
			return
		}
		if b, err := ParseHSAddress(a.String()); err != nil || b != a {
			t.Fatal("address round trip")
		}
	})
}

// FuzzHSInner feeds the inner plaintext decoder (what a record opens to
// with the address), with and without client authorization: it never
// panics, whatever decodes is in range, and a sealed one opens only for
// the vectors' client.
func FuzzHSInner(f *testing.F) {
	v := buildHSVectors(f)
	for _, s := range []string{v.Inner, v.Auth.Inner} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	k := hsTestKey(1)
	addr := hsAddr(k)
	blinded := BlindPrivateKey(k, PeriodAt(time.Unix(vectorNow, 0), DefaultPeriod)).Public
	keys := []*ecdh.PrivateKey{authTestClient()}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeInner(b, addr, blinded, keys)
		if err == nil && (len(c.Intros) == 0 || len(c.Intros) > MaxIntros) {
			t.Fatal("decoded content out of range")
		}
	})
}
