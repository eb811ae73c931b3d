// Package router is the relay side of obol: it forwards cells and, on an
// exit, opens streams to destinations allowed by its exit policy.
package router

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrRefusedByPolicy is returned (wrapped) when the exit policy refuses a
// destination. A refused stream ends with the "exit policy" reason, which
// the client reports to SOCKS as "connection not allowed by ruleset". The
// caller must not retry the same destination through this exit.
var ErrRefusedByPolicy = errors.New("router: destination refused by exit policy")

// DefaultExitRules is the policy of an exit whose operator gives no rules
// of its own: every public destination except SMTP (port 25), which exits
// refuse so that they do not relay spam. Pass it to ParseExitPolicy.
var DefaultExitRules = []string{"reject *:25", "accept *:*"}

// ExitPolicy decides which destinations an exit connects to. It is checked
// after DNS resolution, on the address the exit is about to dial.
//
// Evaluation of Check(ip:port), in order:
//
//  1. The address is normalised: an IPv4-mapped IPv6 address
//     (::ffff:a.b.c.d) becomes the IPv4 address a.b.c.d.
//  2. Port 0 and addresses with an IPv6 zone are refused.
//  3. Reserved destinations are refused (see ReservedPrefixes): private,
//     loopback, link-local, CGNAT, multicast, unspecified, broadcast,
//     unique-local, documentation and other special-purpose ranges,
//     including IPv4 addresses embedded in IPv4-compatible, IPv4-translated
//     (::ffff:0:a.b.c.d, ::ffff:0:0:0/96), NAT64 and 6to4 IPv6 addresses. Operator rules
//     cannot open these; only the options AllowLoopback,
//     AllowPrivateDestinations and AllowReserved can.
//  4. The exit's own addresses (RejectOwnAddrs), on every port, and the
//     listening addresses of known relays (RejectRelayAddrs) are refused,
//     as Tor's ExitPolicyRejectPrivate does, unless re-opened as in 3.
//  5. The operator's rules are tried in order; the first rule whose prefix
//     contains the address and whose ports contain the port decides.
//  6. If no rule matches, the destination is refused (an implicit
//     "reject *:*"). An open exit says "accept *:*" as its last rule.
//
// An ExitPolicy is immutable and safe for concurrent use.
type ExitPolicy struct {
	rules    []Rule
	allowed  []netip.Prefix // reserved prefixes the operator re-opened
	resolver *net.Resolver
	summary  []PortRange // computed once by newSummary
	own      func() []netip.Addr
	relay    func(netip.AddrPort) bool
}

// PolicyOption configures an ExitPolicy.
type PolicyOption func(*ExitPolicy)

// AllowLoopback lets the policy reach 127.0.0.0/8 and ::1. Only local test
// networks use it; operator rules still decide which ports are reachable.
func AllowLoopback() PolicyOption {
	return AllowReserved(
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	)
}

// AllowReserved exempts the given prefixes from the reserved-range check,
// e.g. a private deployment whose destinations live in 10.0.0.0/8. Operator
// rules still decide.
func AllowReserved(prefixes ...netip.Prefix) PolicyOption {
	return func(p *ExitPolicy) {
		for _, pfx := range prefixes {
			p.allowed = append(p.allowed, pfx.Masked())
		}
	}
}

// privatePrefixes are the private-use ranges AllowPrivateDestinations
// re-opens: RFC 1918, CGNAT and IPv6 unique-local addresses.
var privatePrefixes = mustPrefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")

// AllowPrivateDestinations re-opens the private-use ranges (10/8,
// 172.16/12, 192.168/16, 100.64/10, fc00::/7) to the operator's rules, for
// a private deployment whose destinations live there (Tor's
// ExitPolicyRejectPrivate 0). It is unsafe on a public exit: every client
// of the network could then reach the exit's own network.
func AllowPrivateDestinations() PolicyOption { return AllowReserved(privatePrefixes...) }

// RejectOwnAddrs refuses, on every port, the addresses own returns: the
// exit's own addresses, so that clients cannot reach services bound to
// them. own is called on every check and must be safe for concurrent use;
// LocalAddrs is the usual choice.
func RejectOwnAddrs(own func() []netip.Addr) PolicyOption {
	return func(p *ExitPolicy) { p.own = own }
}

// RejectRelayAddrs refuses destinations for which isRelay reports true:
// the listening addresses of the relays the exit knows, so that an exit
// stream cannot be used to reach another relay as if from the exit. It is
// called on every check and must be safe for concurrent use.
func RejectRelayAddrs(isRelay func(netip.AddrPort) bool) PolicyOption {
	return func(p *ExitPolicy) { p.relay = isRelay }
}

// LocalAddrs returns the addresses of this host's interfaces (none if
// they cannot be listed).
func LocalAddrs() []netip.Addr {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// WithResolver sets the resolver Resolve and CheckHost use; by default
// net.DefaultResolver.
func WithResolver(r *net.Resolver) PolicyOption {
	return func(p *ExitPolicy) { p.resolver = r }
}

// NewExitPolicy builds a policy from rules, tried in order.
func NewExitPolicy(rules []Rule, opts ...PolicyOption) *ExitPolicy {
	p := &ExitPolicy{rules: append([]Rule(nil), rules...)}
	for _, o := range opts {
		o(p)
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	p.summary = newSummary(p.rules, p.allowed)
	return p
}

// ParseExitPolicy parses one rule per string (see ParseRule) and builds a
// policy from them. A rule that can never match is an error wrapping
// ErrRuleNeverMatches (see CheckRules): the operator meant something else.
func ParseExitPolicy(lines []string, opts ...PolicyOption) (*ExitPolicy, error) {
	rules := make([]Rule, 0, len(lines))
	for i, l := range lines {
		r, err := ParseRule(l)
		if err != nil {
			return nil, fmt.Errorf("exit policy rule %d: %w", i+1, err)
		}
		rules = append(rules, r)
	}
	p := NewExitPolicy(rules, opts...)
	if err := p.CheckRules(); err != nil {
		return nil, err
	}
	return p, nil
}

// Rules returns a copy of the operator's rules.
func (p *ExitPolicy) Rules() []Rule { return append([]Rule(nil), p.rules...) }

// Check reports whether the exit may connect to addr. A refusal wraps
// ErrRefusedByPolicy and says why.
func (p *ExitPolicy) Check(addr netip.AddrPort) error {
	ip := addr.Addr().Unmap()
	switch {
	case !ip.IsValid():
		return fmt.Errorf("%w: invalid address", ErrRefusedByPolicy)
	case ip.Zone() != "":
		return fmt.Errorf("%w: scoped address", ErrRefusedByPolicy)
	case addr.Port() == 0:
		return fmt.Errorf("%w: port 0", ErrRefusedByPolicy)
	case p.reserved(ip):
		return fmt.Errorf("%w: reserved address range", ErrRefusedByPolicy)
	case p.isOwn(ip):
		return fmt.Errorf("%w: the exit's own address", ErrRefusedByPolicy)
	case p.relay != nil && !p.reopened(ip) && p.relay(netip.AddrPortFrom(ip, addr.Port())):
		return fmt.Errorf("%w: a relay's listening address", ErrRefusedByPolicy)
	}
	for _, r := range p.rules {
		if r.Matches(ip, addr.Port()) {
			if r.Action == Accept {
				return nil
			}
			return fmt.Errorf("%w: rejected by rule %q", ErrRefusedByPolicy, r.String())
		}
	}
	return fmt.Errorf("%w: no rule accepts it", ErrRefusedByPolicy)
}

// reopened reports whether the operator re-opened a range containing ip.
func (p *ExitPolicy) reopened(ip netip.Addr) bool {
	for _, a := range p.allowed {
		if a.Contains(ip) {
			return true
		}
	}
	return false
}

// isOwn reports whether ip is one of the exit's own addresses and not in a
// re-opened range (a loopback test network reaches its own 127.0.0.1).
func (p *ExitPolicy) isOwn(ip netip.Addr) bool {
	if p.own == nil || p.reopened(ip) {
		return false
	}
	for _, a := range p.own() {
		if a.Unmap() == ip {
			return true
		}
	}
	return false
}

// reserved reports whether ip is reserved and not re-opened by the operator.
func (p *ExitPolicy) reserved(ip netip.Addr) bool {
	if p.reopened(ip) {
		return false
	}
	if isReserved(ip) {
		return true
	}
	if v4, ok := embeddedIPv4(ip); ok {
		return p.reserved(v4)
	}
	return false
}

// Summary returns the ports the policy accepts for at least one
// destination it can reach, as sorted, disjoint, non-adjacent ranges.
// Relays publish it in their descriptor; clients pick exits with it. On a
// production exit these are the ports open to some public destination; on
// a test exit, ranges re-opened by AllowLoopback or AllowReserved count
// too, so that a loopback test network's exits advertise what they serve.
func (p *ExitPolicy) Summary() []PortRange { return append([]PortRange(nil), p.summary...) }

// AcceptsPort reports whether the summary contains port.
func (p *ExitPolicy) AcceptsPort(port uint16) bool {
	for _, r := range p.summary {
		if r.Contains(port) {
			return true
		}
	}
	return false
}
