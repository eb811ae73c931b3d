package router

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Action is what a matching rule does.
type Action uint8

const (
	// Reject refuses the destination.
	Reject Action = iota
	// Accept allows the destination.
	Accept
)

func (a Action) String() string {
	if a == Accept {
		return "accept"
	}
	return "reject"
}

// PortRange is an inclusive range of TCP ports, Lo ≤ Hi.
type PortRange struct {
	Lo, Hi uint16
}

// Contains reports whether port lies in r.
func (r PortRange) Contains(port uint16) bool { return r.Lo <= port && port <= r.Hi }

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// Rule is one line of an exit policy: an action, a destination prefix and a
// set of ports. The zero Prefix means "any address of either family".
type Rule struct {
	Action Action
	Prefix netip.Prefix // masked; invalid (zero) matches every address
	Ports  []PortRange  // sorted, merged, non-empty
}

// Matches reports whether the rule applies to ip:port (ip already unmapped).
func (r Rule) Matches(ip netip.Addr, port uint16) bool {
	if r.Prefix.IsValid() && !r.Prefix.Contains(ip) {
		return false
	}
	return portsContain(r.Ports, port)
}

func portsContain(ports []PortRange, port uint16) bool {
	for _, pr := range ports {
		if pr.Contains(port) {
			return true
		}
	}
	return false
}

// String formats the rule in the syntax ParseRule reads.
func (r Rule) String() string {
	return r.Action.String() + " " + formatPrefix(r.Prefix) + ":" + formatPorts(r.Ports)
}

func formatPrefix(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return "*"
	case p.Addr().Is4() && p.Bits() == 32:
		return p.Addr().String()
	case p.Addr().Is4():
		return p.String()
	case p.Bits() == 128:
		return "[" + p.Addr().String() + "]"
	default:
		return "[" + p.Addr().String() + "]/" + strconv.Itoa(p.Bits())
	}
}

func formatPorts(ports []PortRange) string {
	if len(ports) == 1 && ports[0] == (PortRange{1, 65535}) {
		return "*"
	}
	parts := make([]string, len(ports))
	for i, pr := range ports {
		parts[i] = pr.String()
	}
	return strings.Join(parts, ",")
}

// Limits on a rule's text, so that a hostile configuration cannot make the
// parser or the summary expensive.
const (
	maxRuleLen   = 1024
	maxRulePorts = 64
)

var errRuleSyntax = errors.New("exit policy rule syntax")

// ParseRule parses one rule:
//
//	rule   = action SP addr ":" ports
//	action = "accept" / "reject"                       (case-insensitive)
//	addr   = "*" / "*4" / "*6" / IPv4 ["/" bits] / "[" IPv6 "]" ["/" bits]
//	ports  = "*" / range *("," range)
//	range  = port ["-" port]                           (1..65535)
//
// "*" is every address of both families, "*4" 0.0.0.0/0, "*6" ::/0. An
// address without "/bits" is a single host. Host bits under the mask are
// cleared. Examples: "accept 0.0.0.0/0:80,443", "reject *:25",
// "accept [2001:db8::]/32:1-65535".
func ParseRule(s string) (Rule, error) {
	if len(s) > maxRuleLen {
		return Rule{}, fmt.Errorf("%w: longer than %d bytes", errRuleSyntax, maxRuleLen)
	}
	action, rest, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return Rule{}, fmt.Errorf("%w: want \"accept|reject ADDR:PORTS\", got %q", errRuleSyntax, s)
	}
	var r Rule
	switch strings.ToLower(action) {
	case "accept":
		r.Action = Accept
	case "reject":
		r.Action = Reject
	default:
		return Rule{}, fmt.Errorf("%w: unknown action %q", errRuleSyntax, action)
	}
	rest = strings.TrimSpace(rest)
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return Rule{}, fmt.Errorf("%w: missing \":PORTS\" in %q", errRuleSyntax, rest)
	}
	var err error
	if r.Prefix, err = parseAddrSpec(rest[:i]); err != nil {
		return Rule{}, err
	}
	if r.Ports, err = parsePorts(rest[i+1:]); err != nil {
		return Rule{}, err
	}
	return r, nil
}

func parseAddrSpec(s string) (netip.Prefix, error) {
	switch s {
	case "*":
		return netip.Prefix{}, nil
	case "*4":
		return netip.MustParsePrefix("0.0.0.0/0"), nil
	case "*6":
		return netip.MustParsePrefix("::/0"), nil
	}
	host, bits, hasBits := strings.Cut(s, "/")
	ip, err := parseRuleAddr(host)
	if err != nil {
		return netip.Prefix{}, err
	}
	n := ip.BitLen()
	if hasBits {
		if n, err = parseUint(bits, ip.BitLen()); err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: prefix length %q: %w", errRuleSyntax, bits, err)
		}
	}
	return netip.PrefixFrom(ip, n).Masked(), nil
}

// parseRuleAddr reads an IPv4 address or a bracketed IPv6 address. An
// IPv4-mapped IPv6 address is refused: write the IPv4 form.
func parseRuleAddr(s string) (netip.Addr, error) {
	v6 := strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]")
	if v6 {
		s = s[1 : len(s)-1]
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: address: %w", errRuleSyntax, err)
	}
	switch {
	case ip.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%w: scoped address %q", errRuleSyntax, s)
	case ip.Is4() == v6:
		return netip.Addr{}, fmt.Errorf("%w: IPv6 addresses are written in brackets, IPv4 without: %q", errRuleSyntax, s)
	case ip.Is4In6():
		return netip.Addr{}, fmt.Errorf("%w: write IPv4-mapped address %q as IPv4", errRuleSyntax, s)
	}
	return ip, nil
}

func parsePorts(s string) ([]PortRange, error) {
	if s == "*" {
		return []PortRange{{1, 65535}}, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxRulePorts {
		return nil, fmt.Errorf("%w: more than %d port ranges", errRuleSyntax, maxRulePorts)
	}
	ports := make([]PortRange, 0, len(parts))
	for _, part := range parts {
		pr, err := parsePortRange(part)
		if err != nil {
			return nil, err
		}
		ports = append(ports, pr)
	}
	return mergeRanges(ports), nil
}

func parsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := parseUint(lo, 65535)
	h, err2 := parseUint(hi, 65535)
	switch {
	case err1 != nil || err2 != nil:
		return PortRange{}, fmt.Errorf("%w: port range %q: %w", errRuleSyntax, s, errors.Join(err1, err2))
	case l == 0 || l > h:
		return PortRange{}, fmt.Errorf("%w: port range %q: want 1 <= lo <= hi", errRuleSyntax, s)
	}
	return PortRange{uint16(l), uint16(h)}, nil
}

// parseUint parses a decimal number in [0, max] without sign or spaces.
func parseUint(s string, max int) (int, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	n, _ := strconv.Atoi(s)
	if n > max {
		return 0, fmt.Errorf("%d exceeds %d", n, max)
	}
	return n, nil
}

// mergeRanges sorts ranges and merges overlapping or adjacent ones.
func mergeRanges(rs []PortRange) []PortRange {
	slices.SortFunc(rs, func(a, b PortRange) int { return int(a.Lo) - int(b.Lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && int(r.Lo) <= int(out[n-1].Hi)+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}
