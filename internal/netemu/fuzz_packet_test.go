package netemu

import (
	"net/netip"
	"testing"
)

// FuzzParseIPv4: no packet a namespace writes to its device makes the
// parser panic, and one it accepts is a whole IPv4 packet whose
// addresses are the header's.
func FuzzParseIPv4(f *testing.F) {
	f.Add(ipv4(addrA, addrB, 1))
	f.Add([]byte{0x46, 0, 0, 24})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		src, dst, ok := parseIPv4(p)
		if !ok {
			if src.IsValid() || dst.IsValid() {
				t.Fatalf("refused packet gave addresses %v %v", src, dst)
			}
			return
		}
		if len(p) < ipv4MinHeader || p[0]>>4 != 4 {
			t.Fatalf("accepted %x: not an IPv4 header", p)
		}
		if src != netip.AddrFrom4([4]byte(p[12:16])) || dst != netip.AddrFrom4([4]byte(p[16:20])) {
			t.Fatalf("addresses %v %v are not the header's", src, dst)
		}
	})
}
