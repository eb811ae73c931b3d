package router

import "net/netip"

// reservedPrefixes are destinations an exit never connects to unless the
// operator re-opens them with AllowLoopback or AllowReserved. Sources: the
// IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and
// updates), restricted to ranges that are not globally reachable or whose
// use through an exit would reach the exit's own network.
var reservedPrefixes = mustPrefixes(
	// IPv4
	"0.0.0.0/8",       // "this network", includes the unspecified address
	"10.0.0.0/8",      // private (RFC 1918)
	"100.64.0.0/10",   // shared address space, CGNAT (RFC 6598)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, cloud metadata services
	"172.16.0.0/12",   // private (RFC 1918)
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation TEST-NET-1
	"192.88.99.0/24",  // deprecated 6to4 relay anycast
	"192.168.0.0/16",  // private (RFC 1918)
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation TEST-NET-2
	"203.0.113.0/24",  // documentation TEST-NET-3
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, includes broadcast 255.255.255.255
	"::/128",          // unspecified
	"::1/128",         // loopback
	"::/96",           // deprecated IPv4-compatible addresses
	"64:ff9b:1::/48",  // local-use IPv4/IPv6 translation
	"100::/64",        // discard-only
	"2001::/32",       // Teredo
	"2001:2::/48",     // benchmarking
	"2001:10::/28",    // deprecated ORCHID
	"2001:db8::/32",   // documentation
	"3fff::/20",       // documentation
	"5f00::/16",       // segment routing SIDs
	"fc00::/7",        // unique-local
	"fe80::/10",       // link-local
	"fec0::/10",       // deprecated site-local
	"ff00::/8",        // multicast
)

// ReservedPrefixes returns the ranges an exit refuses by default.
func ReservedPrefixes() []netip.Prefix { return append([]netip.Prefix(nil), reservedPrefixes...) }

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func isReserved(ip netip.Addr) bool {
	for _, p := range reservedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

var (
	prefixIPv4Compat     = netip.MustParsePrefix("::/96")
	prefixIPv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96")
	prefixNAT64          = netip.MustParsePrefix("64:ff9b::/96")
	prefix6to4           = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address carried inside an IPv4-compatible,
// IPv4-translated (SIIT, RFC 2765), NAT64 (well-known prefix) or 6to4 IPv6
// address, so that the policy can refuse e.g. 64:ff9b::10.0.0.1,
// ::ffff:0:7f00:1 or 2002:7f00:1:: like the address they lead to.
// IPv4-mapped addresses are unmapped before this is called.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case prefixIPv4Compat.Contains(ip), prefixIPv4Translated.Contains(ip), prefixNAT64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case prefix6to4.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}
