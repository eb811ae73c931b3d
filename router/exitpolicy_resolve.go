package router

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrResolveFailed is returned (wrapped, together with the resolver's own
// error) when a destination name cannot be resolved. The stream ends with
// the "resolve failed" reason; another exit may succeed.
var ErrResolveFailed = errors.New("router: cannot resolve destination")

// maxHostLen bounds a destination name (RFC 1035: 253 characters).
const maxHostLen = 253

// Resolve returns the addresses of host, resolved with the policy's
// resolver. An IP literal (IPv6 with or without brackets) is returned as
// is, without a lookup. A name is looked up fully qualified (a trailing dot
// is added), so the resolver's search domains never apply. IPv4-mapped
// results are unmapped. Resolve does not
// apply the policy; CheckHost does.
func (p *ExitPolicy) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, ok := parseLiteral(host); ok {
		return []netip.Addr{ip}, nil
	}
	if isLocalhost(host) {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}, nil
	}
	name := fullyQualified(host)
	if name == "" || len(name) > maxHostLen+1 || strings.ContainsAny(name, " /\\%[]\x00") || strings.HasPrefix(name, ".") || strings.Contains(name, "..") {
		return nil, fmt.Errorf("%w: malformed name", ErrResolveFailed)
	}
	ips, err := p.resolver.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResolveFailed, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%w: no addresses", ErrResolveFailed)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// isLocalhost reports whether host is "localhost" or a name under it,
// which RFC 6761 reserves for the loopback addresses; they are answered
// without a lookup (the policy then refuses them unless loopback is
// allowed), whatever the exit's resolver or hosts file says.
func isLocalhost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// fullyQualified returns host with a trailing dot, so that the resolver
// looks up exactly that name and never appends the exit's search domains
// (a client asking for "intranet" must not reach intranet.exit-corp.example).
func fullyQualified(host string) string {
	if host == "" || strings.HasSuffix(host, ".") {
		return host
	}
	return host + "."
}

func parseLiteral(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	ip, err := netip.ParseAddr(host)
	return ip.Unmap(), err == nil
}

// CheckHost resolves host and checks every candidate address with port.
// It returns the candidates the policy accepts, in resolver order; the exit
// dials only these and never resolves the name again, so a name that
// re-resolves to another address (DNS rebinding) cannot reach it. If none
// is accepted the error wraps ErrRefusedByPolicy, so a name resolving only
// to 127.0.0.1 or 10.0.0.1 is refused on an exit without AllowLoopback.
func (p *ExitPolicy) CheckHost(ctx context.Context, host string, port uint16) ([]netip.AddrPort, error) {
	ips, err := p.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var ok []netip.AddrPort
	var firstErr error
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip, port)
		if err := p.Check(ap); err != nil {
			firstErr = cmpOr(firstErr, err)
			continue
		}
		ok = append(ok, ap)
	}
	if len(ok) == 0 {
		return nil, firstErr
	}
	return ok, nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
