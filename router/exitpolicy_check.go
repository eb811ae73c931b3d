package router

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrRuleNeverMatches is returned (wrapped) by CheckRules and
// ParseExitPolicy for a rule that can never decide anything: its effect is
// not what the operator wrote, so the policy is refused rather than
// silently ignored.
var ErrRuleNeverMatches = errors.New("router: exit policy rule can never match")

// CheckRules reports the first rule that can never match:
//
//   - an accept rule whose whole prefix lies in a range refused before the
//     operator's rules (reserved and not re-opened), e.g.
//     "accept 10.200.0.0/16:*" on an exit that refuses private
//     destinations; a reject rule there is redundant but does what it
//     says, and is allowed;
//   - a rule entirely covered by an earlier rule (every address and port
//     it names already decided), e.g. "reject *:25" after "accept *:*".
func (p *ExitPolicy) CheckRules() error {
	for i, r := range p.rules {
		if r.Action == Accept {
			if pfx, ok := p.refusedBefore(r.Prefix); ok {
				return fmt.Errorf("%w: rule %d %q: %v is refused before the operator's rules "+
					"(private and special-purpose destinations; a private deployment can allow them explicitly)",
					ErrRuleNeverMatches, i+1, r.String(), pfx)
			}
		}
		for j, e := range p.rules[:i] {
			if covers(e, r) {
				return fmt.Errorf("%w: rule %d %q is covered by the earlier rule %d %q",
					ErrRuleNeverMatches, i+1, r.String(), j+1, e.String())
			}
		}
	}
	return nil
}

// refusedBefore returns the reserved range that contains all of pfx, if
// no re-opened range overlaps pfx.
func (p *ExitPolicy) refusedBefore(pfx netip.Prefix) (netip.Prefix, bool) {
	if !pfx.IsValid() {
		return netip.Prefix{}, false
	}
	for _, a := range p.allowed {
		if a.Overlaps(pfx) {
			return netip.Prefix{}, false
		}
	}
	for _, res := range reservedPrefixes {
		if prefixWithin(pfx, res) {
			return res, true
		}
	}
	return netip.Prefix{}, false
}

// prefixWithin reports whether every address of inner lies in outer.
func prefixWithin(inner, outer netip.Prefix) bool {
	return inner.Addr().BitLen() == outer.Addr().BitLen() && outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// covers reports whether earlier decides every destination later names.
func covers(earlier, later Rule) bool {
	if earlier.Prefix.IsValid() && (!later.Prefix.IsValid() || !prefixWithin(later.Prefix, earlier.Prefix)) {
		return false
	}
	for _, lr := range later.Ports {
		if !rangeWithin(lr, earlier.Ports) {
			return false
		}
	}
	return true
}

// rangeWithin reports whether r lies in one of the merged ranges of rs.
func rangeWithin(r PortRange, rs []PortRange) bool {
	for _, e := range rs {
		if e.Lo <= r.Lo && r.Hi <= e.Hi {
			return true
		}
	}
	return false
}
