//go:build linux

package cellcrypt

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGuardPages runs every implementation over inputs that end at an
// unmapped page or start right after one, so that a read or write past
// either end of the slices faults.
func TestGuardPages(t *testing.T) {
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 4*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Skip("mmap:", err)
	}
	defer unix.Munmap(mem)
	// pages: guard, data, data, guard
	if err := unix.Mprotect(mem[:page], unix.PROT_NONE); err != nil {
		t.Skip("mprotect:", err)
	}
	if err := unix.Mprotect(mem[3*page:], unix.PROT_NONE); err != nil {
		t.Skip("mprotect:", err)
	}
	lo, hi := page, 3*page
	var key [KeySize]byte
	var nonce [NonceSize]byte
	key[0], nonce[0] = 1, 2
	for n := 0; n <= 2048; n += 1 + n/64 {
		for _, at := range []int{lo, hi - n} {
			buf := mem[at : at+n]
			for i := range buf {
				buf[i] = byte(i)
			}
			src := bytes.Clone(buf)
			want := refCTR(t, key[:], nonce[:], src)
			for _, mode := range ctrModes() {
				copy(buf, src)
				newCTR(t, &key, mode).XORKeyStream(buf, buf, &nonce)
				if !bytes.Equal(buf, want) {
					t.Fatalf("CTR %s, %d bytes at a guard page: wrong output", modeName[mode], n)
				}
			}
			copy(buf, src)
			tag := refGMAC(t, key[:], src)
			for _, mode := range gmacImpls() {
				var got [TagSize]byte
				newGMAC(&key, mode).Sum(&got, buf)
				if !bytes.Equal(got[:], tag) {
					t.Fatalf("GMAC %s, %d bytes at a guard page: wrong tag", gmacName[mode], n)
				}
			}
		}
	}
}
