package cellcrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"testing"
)

// refGCM is the standard library's AES-256-GCM under key.
func refGCM(t testing.TB, key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// refCTR is AES-GCM's ciphertext body of src for nonce.
func refCTR(t testing.TB, key, nonce, src []byte) []byte {
	return refGCM(t, key).Seal(nil, nonce, src, nil)[:len(src)]
}

// refGMAC is AES-GCM's tag over data as additional data, zero nonce.
func refGMAC(t testing.TB, key, data []byte) []byte {
	return refGCM(t, key).Seal(nil, make([]byte, NonceSize), nil, data)
}

// ctrModes are the keystream implementations this machine can run.
func ctrModes() []int {
	var modes []int
	for m := ctrGeneric; m <= ctrMode(); m++ {
		modes = append(modes, m)
	}
	return modes
}

var modeName = map[int]string{ctrGeneric: "generic", ctrAESNI: "aesni", ctrVAES256: "vaes-256", ctrVAES512: "vaes-512"}

// newCTR returns a CTR under key that runs implementation mode.
func newCTR(t testing.TB, key *[KeySize]byte, mode int) *CTR {
	c := new(CTR)
	if mode == ctrGeneric {
		forceGeneric = true
		defer func() { forceGeneric = false }()
	}
	c.Init(key)
	if int(c.mode) < mode {
		t.Fatalf("mode %d not available", mode)
	}
	c.mode = uint8(mode)
	return c
}

// gmacImpls are the GMAC implementations this machine can run.
func gmacImpls() []int {
	var modes []int
	for m := gmacGeneric; m <= gmacMode(); m++ {
		modes = append(modes, m)
	}
	return modes
}

var gmacName = map[int]string{gmacGeneric: "generic", gmacVec128: "pclmul-128", gmacVec256: "vpclmul-256", gmacVec512: "vpclmul-512"}

// newGMAC returns a GMAC under key that runs implementation mode.
func newGMAC(key *[KeySize]byte, mode int) *GMAC {
	g := new(GMAC)
	if mode == gmacGeneric {
		forceGeneric = true
		defer func() { forceGeneric = false }()
	}
	g.Init(key)
	if int(g.mode) < mode {
		panic("GMAC implementation not available")
	}
	g.mode = uint8(mode)
	return g
}

func TestCTRMatchesGCM(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, mode := range ctrModes() {
		t.Run(modeName[mode], func(t *testing.T) {
			for trial := 0; trial < 3; trial++ {
				var key [KeySize]byte
				var nonce [NonceSize]byte
				fill(r, key[:])
				fill(r, nonce[:])
				if trial == 1 { // the low counter bytes near a carry
					copy(nonce[8:], []byte{0xff, 0xff, 0xff, 0xff})
				}
				c := newCTR(t, &key, mode)
				buf := make([]byte, 2048+64)
				for n := 0; n <= 2048; n++ {
					off := n % 7
					src := buf[off : off+n]
					fill(r, src)
					want := refCTR(t, key[:], nonce[:], src)
					// separate output, unaligned by a different amount
					dst := make([]byte, n+3)[3:]
					c.XORKeyStream(dst, src, &nonce)
					if !bytes.Equal(dst, want) {
						t.Fatalf("len %d: keystream differs from AES-GCM", n)
					}
					// in place
					c.XORKeyStream(src, src, &nonce)
					if !bytes.Equal(src, want) {
						t.Fatalf("len %d in place: keystream differs from AES-GCM", n)
					}
				}
			}
		})
	}
}

// TestCTRLeavesRestOfDst checks that bytes of dst past len(src) and around
// the slices are not written.
func TestCTRLeavesRestOfDst(t *testing.T) {
	var key [KeySize]byte
	var nonce [NonceSize]byte
	for _, mode := range ctrModes() {
		c := newCTR(t, &key, mode)
		for n := 0; n <= 300; n++ {
			buf := bytes.Repeat([]byte{0xa5}, n+600)
			src := make([]byte, n)
			c.XORKeyStream(buf[100:], src, &nonce)
			for i, b := range buf {
				if (i < 100 || i >= 100+n) && b != 0xa5 {
					t.Fatalf("%s len %d: byte %d outside the output written", modeName[mode], n, i)
				}
			}
		}
	}
}

func TestGMACMatchesGCM(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, mode := range gmacImpls() {
		t.Run(gmacName[mode], func(t *testing.T) {
			for trial := 0; trial < 3; trial++ {
				var key [KeySize]byte
				fill(r, key[:])
				g := newGMAC(&key, mode)
				buf := make([]byte, 2048+16)
				for n := 0; n <= 2048; n++ {
					data := buf[n%5 : n%5+n]
					fill(r, data)
					var got [TagSize]byte
					g.Sum(&got, data)
					if want := refGMAC(t, key[:], data); !bytes.Equal(got[:], want) {
						t.Fatalf("len %d: tag %x, AES-GCM %x", n, got, want)
					}
				}
			}
		})
	}
}

func TestNoAllocs(t *testing.T) {
	var key [KeySize]byte
	var nonce [NonceSize]byte
	p := make([]byte, 1275)
	for _, mode := range ctrModes() {
		c := newCTR(t, &key, mode)
		c.XORKeyStream(p, p, &nonce) // the generic path's pool
		if a := testing.AllocsPerRun(100, func() { c.XORKeyStream(p[16:], p[16:], &nonce) }); a != 0 {
			t.Errorf("CTR %s: %v allocations per call", modeName[mode], a)
		}
	}
	for _, mode := range gmacImpls() {
		g := newGMAC(&key, mode)
		var tag [TagSize]byte
		if a := testing.AllocsPerRun(100, func() { g.Sum(&tag, p) }); a != 0 {
			t.Errorf("GMAC %s: %v allocations per call", gmacName[mode], a)
		}
	}
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// FuzzCellCrypt compares every implementation of both primitives with the
// standard library's AES-GCM.
func FuzzCellCrypt(f *testing.F) {
	f.Add(make([]byte, KeySize), make([]byte, NonceSize), []byte{}, uint8(0))
	f.Add(bytes.Repeat([]byte{7}, KeySize), bytes.Repeat([]byte{0xff}, NonceSize), make([]byte, 1275), uint8(3))
	f.Fuzz(func(t *testing.T, k, n, data []byte, off uint8) {
		if len(k) != KeySize || len(n) != NonceSize {
			return
		}
		key, nonce := [KeySize]byte(k), [NonceSize]byte(n)
		o := int(off % 16)
		buf := make([]byte, o+len(data))
		src := buf[o:]
		copy(src, data)
		want := refCTR(t, k, n, data)
		for _, mode := range ctrModes() {
			c := newCTR(t, &key, mode)
			dst := make([]byte, len(data))
			c.XORKeyStream(dst, src, &nonce)
			if !bytes.Equal(dst, want) {
				t.Fatalf("CTR %s differs from AES-GCM", modeName[mode])
			}
		}
		tag := refGMAC(t, k, data)
		for _, mode := range gmacImpls() {
			var got [TagSize]byte
			newGMAC(&key, mode).Sum(&got, src)
			if !bytes.Equal(got[:], tag) {
				t.Fatalf("GMAC %s differs from AES-GCM", gmacName[mode])
			}
		}
	})
}

// The benchmarks use the relay cell's sizes: the keystream covers the
// 1259-byte right part, the hash the whole 1275-byte cell.
func BenchmarkCTR(b *testing.B) {
	var key [KeySize]byte
	var nonce [NonceSize]byte
	p := make([]byte, 1259)
	for _, mode := range ctrModes() {
		b.Run(modeName[mode], func(b *testing.B) {
			c := newCTR(b, &key, mode)
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				c.XORKeyStream(p, p, &nonce)
			}
		})
	}
	b.Run("stdlib-ctr", func(b *testing.B) {
		blk, _ := aes.NewCipher(key[:])
		s := cipher.NewCTR(blk, make([]byte, 16))
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			s.XORKeyStream(p, p)
		}
	})
}

func BenchmarkGMAC(b *testing.B) {
	var key [KeySize]byte
	p := make([]byte, 1275)
	for _, mode := range gmacImpls() {
		b.Run(gmacName[mode], func(b *testing.B) {
			g := newGMAC(&key, mode)
			var tag [TagSize]byte
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				g.Sum(&tag, p)
			}
		})
	}
}
