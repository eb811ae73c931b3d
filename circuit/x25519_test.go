package circuit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"
)

// The fast key generation gives exactly X25519(k, 9) for any 32 bytes:
// RFC 7748's vector, random keys, and keys at the clamping edges.
func TestX25519BaseMatches(t *testing.T) {
	// RFC 7748 §6.1: Alice's private and public keys.
	priv, _ := hex.DecodeString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	want, _ := hex.DecodeString("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	if got := x25519Base(priv); !bytes.Equal(got, want) {
		t.Fatalf("RFC 7748 vector: %x", got)
	}
	keys := [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32)}
	for range 2000 {
		k := make([]byte, 32)
		rand.Read(k)
		keys = append(keys, k)
	}
	for _, k := range keys {
		want, err := curve25519.X25519(k, curve25519.Basepoint)
		if err != nil {
			t.Fatal(err)
		}
		if got := x25519Base(k); !bytes.Equal(got, want) {
			t.Fatalf("key %x: got %x, want %x", k, got, want)
		}
	}
}

func BenchmarkX25519KeyGen(b *testing.B) {
	for _, c := range []struct {
		name string
		dh   noise.DHFunc
	}{{"ladder", noise.DH25519}, {"edwards", dh25519{}}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.dh.GenerateKeypair(rand.Reader); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
