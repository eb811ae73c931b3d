package view

import (
	"bytes"
	"encoding/hex"
	"slices"
	"testing"
)

// seed adds the vectors, valid and invalid, of one message kind.
func seed(f *testing.F, kind string) {
	f.Helper()
	v := buildVectors(f)
	h := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	switch kind {
	case "request":
		f.Add(h(v.DigestRequest.Hex))
		f.Add(h(v.FetchRequest.Hex))
	case "digest":
		f.Add(h(v.Digest.Hex))
	case "records":
		f.Add(h(v.Records.Hex))
	}
	for _, iv := range v.Invalid {
		if iv.Message == kind {
			f.Add(h(iv.Hex))
		}
	}
}

// A request that decodes encodes back to the same bytes.
func FuzzDecodeRequest(f *testing.F) {
	seed(f, "request")
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if len(q.Fetch) > MaxFetch {
			t.Fatalf("%d peer IDs decoded", len(q.Fetch))
		}
		re, err := EncodeRequest(q)
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("round trip: %x -> %x (%v)", b, re, err)
		}
	})
}

// A digest that decodes encodes back to the same bytes.
func FuzzDecodeDigest(f *testing.F) {
	seed(f, "digest")
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDigest(b)
		if err != nil {
			return
		}
		if len(d.Entries) > MaxDigestEntries {
			t.Fatalf("%d entries decoded", len(d.Entries))
		}
		re, err := EncodeDigest(d)
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("round trip: %x -> %x (%v)", b, re, err)
		}
	})
}

// Records that decode encode and decode back to the same records (the
// compressed bytes may differ: DEFLATE has many encodings of one body),
// and never alias the input.
func FuzzDecodeRecords(f *testing.F) {
	seed(f, "records")
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := DecodeRecords(b)
		if err != nil {
			return
		}
		want := make(Records, len(rs))
		for i, r := range rs {
			want[i] = slices.Clone(r)
		}
		for i := range b {
			b[i] ^= 0xff
		}
		if !slices.EqualFunc(rs, want, bytes.Equal) {
			t.Fatal("decoded records alias the input")
		}
		re, err := EncodeRecords(rs)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		back, err := DecodeRecords(re)
		if err != nil || !slices.EqualFunc(back, want, bytes.Equal) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
