package router

import (
	"net/netip"
	"slices"
)

var (
	allIPv4 = netip.MustParsePrefix("0.0.0.0/0")
	allIPv6 = netip.MustParsePrefix("::/0")
)

// newSummary computes the ports for which some reachable destination is
// accepted: a public one, or one in a reserved range the operator
// re-opened. Ports are cut into segments at every rule's range boundaries;
// within a segment every port meets the same rules, so one port decides
// for the whole segment.
func newSummary(rules []Rule, allowed []netip.Prefix) []PortRange {
	blocked := blockedPrefixes(allowed)
	var out []PortRange
	for _, seg := range portSegments(rules) {
		if acceptsSomeReachable(rules, blocked, seg.Lo) {
			out = append(out, seg)
		}
	}
	return mergeRanges(out)
}

// portSegments splits 1..65535 at the boundaries of every rule's ranges.
func portSegments(rules []Rule) []PortRange {
	cuts := []int{1, 65536} // segment starts, plus one past the end
	for _, r := range rules {
		for _, pr := range r.Ports {
			cuts = append(cuts, int(pr.Lo), int(pr.Hi)+1)
		}
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	segs := make([]PortRange, 0, len(cuts)-1)
	for i := 0; i+1 < len(cuts); i++ {
		segs = append(segs, PortRange{uint16(cuts[i]), uint16(cuts[i+1] - 1)})
	}
	return segs
}

// blockedPrefixes returns the reserved ranges minus the re-opened ones.
func blockedPrefixes(allowed []netip.Prefix) []netip.Prefix {
	blocked := append([]netip.Prefix(nil), reservedPrefixes...)
	for _, a := range allowed {
		var next []netip.Prefix
		for _, b := range blocked {
			next = append(next, subtract(b, a)...)
		}
		blocked = next
	}
	return blocked
}

// acceptsSomeReachable reports whether, for port, an accept rule is
// reached for at least one address outside blocked and outside every
// earlier reject rule. IPv4 addresses embedded in IPv6 ones are not
// followed here, so the summary may over-state an IPv6-only rule that
// covers nothing but 6to4 or NAT64 forms of reserved IPv4 addresses.
func acceptsSomeReachable(rules []Rule, reserved []netip.Prefix, port uint16) bool {
	blocked := append([]netip.Prefix(nil), reserved...)
	for _, r := range rules {
		if !portsContain(r.Ports, port) {
			continue
		}
		for _, p := range expandPrefix(r.Prefix) {
			if r.Action == Reject {
				blocked = append(blocked, p)
			} else if !coveredBy(p, blocked) {
				return true
			}
		}
	}
	return false
}

// expandPrefix turns the "any address" zero prefix into both families.
func expandPrefix(p netip.Prefix) []netip.Prefix {
	if !p.IsValid() {
		return []netip.Prefix{allIPv4, allIPv6}
	}
	return []netip.Prefix{p}
}

// coveredBy reports whether every address of p lies in some prefix of set.
func coveredBy(p netip.Prefix, set []netip.Prefix) bool {
	rest := []netip.Prefix{p}
	for _, b := range set {
		var next []netip.Prefix
		for _, a := range rest {
			next = append(next, subtract(a, b)...)
		}
		if rest = next; len(rest) == 0 {
			return true
		}
	}
	return false
}

// subtract returns prefixes that together hold exactly a minus b.
func subtract(a, b netip.Prefix) []netip.Prefix {
	switch {
	case a.Addr().Is4() != b.Addr().Is4():
		return []netip.Prefix{a}
	case b.Bits() <= a.Bits() && b.Contains(a.Addr()):
		return nil
	case b.Bits() <= a.Bits() || !a.Contains(b.Addr()):
		return []netip.Prefix{a}
	}
	// a strictly contains b: keep the sibling of every step on the way
	// from a down to b.
	out := make([]netip.Prefix, 0, b.Bits()-a.Bits())
	for bit := a.Bits(); bit < b.Bits(); bit++ {
		out = append(out, netip.PrefixFrom(flipBit(b.Addr(), bit), bit+1).Masked())
	}
	return out
}

// flipBit flips bit i (0 = most significant) of ip.
func flipBit(ip netip.Addr, i int) netip.Addr {
	if ip.Is4() {
		b := ip.As4()
		b[i/8] ^= 0x80 >> (i % 8)
		return netip.AddrFrom4(b)
	}
	b := ip.As16()
	b[i/8] ^= 0x80 >> (i % 8)
	return netip.AddrFrom16(b)
}
