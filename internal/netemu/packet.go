package netemu

import (
	"encoding/binary"
	"net/netip"
)

// An IPv4 header, as far as the Forwarder reads it (RFC 791):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-------+-------+---------------+-------------------------------+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-------+-------+---------------+-------------------------------+
//	|   ... 8 bytes: identification, flags, fragment, TTL, proto, checksum
//	+---------------------------------------------------------------+
//	|                       Source Address                          |
//	+---------------------------------------------------------------+
//	|                    Destination Address                        |
//	+---------------------------------------------------------------+
const (
	ipv4MinHeader = 20
	ipv4SrcOffset = 12
	ipv4DstOffset = 16
)

// parseIPv4 returns the source and destination of the IPv4 packet p, and
// false if p is not a whole IPv4 packet (another version, a header or
// total length that does not fit).
func parseIPv4(p []byte) (src, dst netip.Addr, ok bool) {
	if len(p) < ipv4MinHeader || p[0]>>4 != 4 {
		return src, dst, false
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	if ihl < ipv4MinHeader || total < ihl || total > len(p) {
		return src, dst, false
	}
	src = netip.AddrFrom4([4]byte(p[ipv4SrcOffset : ipv4SrcOffset+4]))
	dst = netip.AddrFrom4([4]byte(p[ipv4DstOffset : ipv4DstOffset+4]))
	return src, dst, true
}
