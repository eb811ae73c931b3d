package payment

import (
	"bytes"
	"errors"
	"testing"
)

func TestFragmentRoundTrip(t *testing.T) {
	for _, n := range []int{1, 100, 1248, 1249, 2496, 2497, MaxChannelOpenSize, MaxMessageSize} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		frags, err := Fragment(msg, 1252)
		if err != nil {
			t.Fatal(n, err)
		}
		var r Reassembler
		for i, f := range frags {
			if len(f) > 1252 {
				t.Fatalf("%d: fragment of %d bytes", n, len(f))
			}
			got, err := r.Add(f)
			if err != nil {
				t.Fatal(n, err)
			}
			if last := i == len(frags)-1; last != (got != nil) {
				t.Fatalf("%d: fragment %d/%d returned %d bytes", n, i, len(frags), len(got))
			}
			if got != nil && !bytes.Equal(got, msg) {
				t.Fatalf("%d: reassembled message differs", n)
			}
		}
	}
	if _, err := Fragment(make([]byte, MaxMessageSize+1), 1252); !errors.Is(err, ErrMalformed) {
		t.Fatal("oversized message fragmented")
	}
}

func TestReassemblerRejects(t *testing.T) {
	msg := make([]byte, 3000)
	frags, _ := Fragment(msg, 1252)
	cases := []struct {
		name string
		in   [][]byte
	}{
		{"empty", [][]byte{{}}},
		{"header only", [][]byte{{0, 1, 0, 0}}},
		{"zero total", [][]byte{{0, 0, 0, 0, 1}}},
		{"too large", [][]byte{{0x20, 0x01, 0, 0, 1}}},
		{"skipped fragment", [][]byte{frags[0], frags[2]}},
		{"starts mid-message", [][]byte{frags[1]}},
		{"restart before done", [][]byte{frags[0], frags[0]}},
		{"past the end", [][]byte{{0, 2, 0, 0, 1, 2, 3}}},
		{"total changes", [][]byte{frags[0], append([]byte{0x0b, 0xb8 + 1}, frags[1][2:]...)}},
	}
	for _, c := range cases {
		var r Reassembler
		var err error
		for _, f := range c.in {
			if _, err = r.Add(f); err != nil {
				break
			}
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v", c.name, err)
		}
		if r.Pending() {
			t.Errorf("%s: state kept after an error", c.name)
		}
	}
}

// FuzzReassembler feeds arbitrary fragment sequences: no panic, never a
// message larger than MaxMessageSize, and a message split by Fragment
// always comes back whole after any garbage that ended in an error.
func FuzzReassembler(f *testing.F) {
	frags, _ := Fragment(bytes.Repeat([]byte{9}, 3000), 1252)
	f.Add(frags[0], frags[1], frags[2])
	f.Add([]byte{0, 1, 0, 0, 5}, []byte{}, []byte{0, 2, 0, 1, 1})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		var r Reassembler
		for _, x := range [][]byte{a, b, c} {
			msg, err := r.Add(x)
			if err == nil && len(msg) > MaxMessageSize {
				t.Fatal("oversized message")
			}
		}
		want := append(append(append([]byte{}, a...), b...), c...)
		if len(want) == 0 || len(want) > MaxMessageSize {
			return
		}
		var clean Reassembler
		fs, err := Fragment(want, 600)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for _, x := range fs {
			if got, err = clean.Add(x); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatal("round trip differs")
		}
	})
}
