package router

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func mustPolicy(t testing.TB, lines []string, opts ...PolicyOption) *ExitPolicy {
	t.Helper()
	p, err := ParseExitPolicy(lines, opts...)
	if err != nil {
		t.Fatalf("ParseExitPolicy(%q): %v", lines, err)
	}
	return p
}

func TestCheck(t *testing.T) {
	open := []string{"accept *:*"}
	tests := []struct {
		name   string
		rules  []string
		opts   []PolicyOption
		addr   string
		accept bool
	}{
		{"public v4 open", open, nil, "93.184.216.34:443", true},
		{"public v6 open", open, nil, "[2606:2800:220:1::1]:80", true},
		{"no rules refuses", nil, nil, "93.184.216.34:443", false},
		{"port 0", open, nil, "93.184.216.34:0", false},
		{"10/8", open, nil, "10.0.0.1:80", false},
		{"172.16/12", open, nil, "172.31.255.255:80", false},
		{"172.32 is public", open, nil, "172.32.0.1:80", true},
		{"192.168/16", open, nil, "192.168.1.1:80", false},
		{"loopback", open, nil, "127.0.0.1:80", false},
		{"loopback high", open, nil, "127.255.0.9:80", false},
		{"loopback v6", open, nil, "[::1]:80", false},
		{"link-local metadata", open, nil, "169.254.169.254:80", false},
		{"link-local v6", open, nil, "[fe80::1]:80", false},
		{"link-local v6 zoned", open, nil, "[fe80::1%eth0]:80", false},
		{"cgnat", open, nil, "100.64.0.1:80", false},
		{"cgnat end", open, nil, "100.127.255.254:80", false},
		{"after cgnat", open, nil, "100.128.0.1:80", true},
		{"multicast v4", open, nil, "224.0.0.1:80", false},
		{"multicast v6", open, nil, "[ff02::1]:80", false},
		{"unspecified v4", open, nil, "0.0.0.0:80", false},
		{"unspecified v6", open, nil, "[::]:80", false},
		{"broadcast", open, nil, "255.255.255.255:80", false},
		{"class E", open, nil, "240.0.0.1:80", false},
		{"ula", open, nil, "[fd00::1]:80", false},
		{"ula fc", open, nil, "[fc12::1]:80", false},
		{"mapped private", open, nil, "[::ffff:10.0.0.1]:80", false},
		{"mapped loopback", open, nil, "[::ffff:127.0.0.1]:80", false},
		{"mapped public", open, nil, "[::ffff:93.184.216.34]:80", true},
		{"compat loopback", open, nil, "[::127.0.0.1]:80", false},
		{"nat64 private", open, nil, "[64:ff9b::10.0.0.1]:80", false},
		{"nat64 public", open, nil, "[64:ff9b::93.184.216.34]:80", true},
		{"6to4 loopback", open, nil, "[2002:7f00:1::1]:80", false},
		{"6to4 public", open, nil, "[2002:5db8:d822::1]:80", true},
		{"teredo", open, nil, "[2001::1]:80", false},
		{"documentation v4", open, nil, "192.0.2.1:80", false},
		{"documentation v6", open, nil, "[2001:db8::1]:80", false},
		{"benchmarking", open, nil, "198.18.0.1:80", false},
		{"loopback allowed", open, []PolicyOption{AllowLoopback()}, "127.0.0.1:8080", true},
		{"loopback v6 allowed", open, []PolicyOption{AllowLoopback()}, "[::1]:8080", true},
		{"mapped loopback allowed", open, []PolicyOption{AllowLoopback()}, "[::ffff:127.0.0.1]:8080", true},
		{"loopback allowed still needs a rule", nil, []PolicyOption{AllowLoopback()}, "127.0.0.1:8080", false},
		{"loopback allowed, private still refused", open, []PolicyOption{AllowLoopback()}, "10.0.0.1:80", false},
		{"loopback allowed, rule rejects port", []string{"reject *:25", "accept *:*"}, []PolicyOption{AllowLoopback()}, "127.0.0.1:25", false},
		{"reserved re-opened", open, []PolicyOption{AllowReserved(netip.MustParsePrefix("10.1.0.0/16"))}, "10.1.2.3:80", true},
		{"reserved re-opened elsewhere", open, []PolicyOption{AllowReserved(netip.MustParsePrefix("10.1.0.0/16"))}, "10.2.2.3:80", false},
		{"rule cannot open private", []string{"accept 10.0.0.0/8:*"}, nil, "10.0.0.1:80", false},
		{"first match reject", []string{"reject *:25", "accept *:*"}, nil, "93.184.216.34:25", false},
		{"first match accept", []string{"accept *:25", "reject *:*"}, nil, "93.184.216.34:25", true},
		{"port list", []string{"accept 0.0.0.0/0:80,443"}, nil, "93.184.216.34:443", true},
		{"port list miss", []string{"accept 0.0.0.0/0:80,443"}, nil, "93.184.216.34:8080", false},
		{"v4 rule misses v6", []string{"accept 0.0.0.0/0:*"}, nil, "[2606:2800:220:1::1]:80", false},
		{"v6 prefix", []string{"accept [2606:2800::]/32:1-65535"}, nil, "[2606:2800:220:1::1]:80", true},
		{"v6 prefix miss", []string{"accept [2606:2800::]/32:1-65535"}, nil, "[2607::1]:80", false},
		{"host rule", []string{"reject 93.184.216.34:*", "accept *:*"}, nil, "93.184.216.34:80", false},
		{"host rule neighbour", []string{"reject 93.184.216.34:*", "accept *:*"}, nil, "93.184.216.35:80", true},
		{"star4", []string{"accept *4:*"}, nil, "1.1.1.1:53", true},
		{"star6 misses v4", []string{"accept *6:*"}, nil, "1.1.1.1:53", false},
		{"mapped matches v4 rule", []string{"accept 1.1.1.0/24:53"}, nil, "[::ffff:1.1.1.1]:53", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := uncheckedPolicy(t, tt.rules, tt.opts...) // some rules here can never match
			err := p.Check(netip.MustParseAddrPort(tt.addr))
			if tt.accept && err != nil {
				t.Fatalf("Check(%s) = %v, want accept", tt.addr, err)
			}
			if !tt.accept && !errors.Is(err, ErrRefusedByPolicy) {
				t.Fatalf("Check(%s) = %v, want ErrRefusedByPolicy", tt.addr, err)
			}
		})
	}
}

func TestCheckInvalidAddr(t *testing.T) {
	p := mustPolicy(t, []string{"accept *:*"})
	if err := p.Check(netip.AddrPort{}); !errors.Is(err, ErrRefusedByPolicy) {
		t.Fatalf("Check(zero) = %v", err)
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		name  string
		rules []string
		opts  []PolicyOption
		want  []PortRange
	}{
		{"none", nil, nil, nil},
		{"open", []string{"accept *:*"}, nil, []PortRange{{1, 65535}}},
		{"web", []string{"accept 0.0.0.0/0:80,443"}, nil, []PortRange{{80, 80}, {443, 443}}},
		{"reject 25", []string{"reject *:25", "accept *:*"}, nil, []PortRange{{1, 24}, {26, 65535}}},
		{"private only", []string{"accept 10.0.0.0/8:*"}, nil, nil},
		{"private re-opened", []string{"accept 10.0.0.0/8:*"}, []PolicyOption{AllowReserved(netip.MustParsePrefix("10.0.0.0/8"))}, []PortRange{{1, 65535}}},
		{"private partly re-opened", []string{"accept 10.0.0.0/8:80"}, []PolicyOption{AllowReserved(netip.MustParsePrefix("10.9.0.0/16"))}, []PortRange{{80, 80}}},
		{"other range re-opened", []string{"accept 10.0.0.0/8:80"}, []PolicyOption{AllowReserved(netip.MustParsePrefix("192.168.0.0/16"))}, nil},
		{"loopback only", []string{"accept 127.0.0.1:8080"}, nil, nil},
		{"loopback only on a test exit", []string{"accept 127.0.0.1:8080"}, []PolicyOption{AllowLoopback()}, []PortRange{{8080, 8080}}},
		{"v6 loopback on a test exit", []string{"reject *4:*", "accept [::1]:443"}, []PolicyOption{AllowLoopback()}, []PortRange{{443, 443}}},
		{"v4 rejected, v6 accepted", []string{"reject *4:*", "accept *:443"}, nil, []PortRange{{443, 443}}},
		{"both rejected", []string{"reject *4:80", "reject *6:80", "accept *:80-81"}, nil, []PortRange{{81, 81}}},
		{"half rejected", []string{"reject 0.0.0.0/1:80", "accept *4:80"}, nil, []PortRange{{80, 80}}},
		{"halves rejected", []string{"reject 0.0.0.0/1:80", "reject 128.0.0.0/1:80", "accept *4:80"}, nil, nil},
		{"v6 documentation only", []string{"accept [2001:db8::]/32:1-65535"}, nil, nil},
		{"adjacent merged", []string{"accept *:80", "accept *:81-90"}, nil, []PortRange{{80, 90}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Built without ParseExitPolicy's CheckRules: some of these
			// policies have rules that can never match, and the summary
			// must still be right for them.
			p := uncheckedPolicy(t, tt.rules, tt.opts...)
			if got := p.Summary(); !slices.Equal(got, tt.want) {
				t.Fatalf("Summary() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAcceptsPort(t *testing.T) {
	p := mustPolicy(t, []string{"reject *:25", "accept *:20-30,443"})
	for port, want := range map[uint16]bool{0: false, 19: false, 20: true, 24: true, 25: false, 26: true, 30: true, 31: false, 443: true, 65535: false} {
		if got := p.AcceptsPort(port); got != want {
			t.Errorf("AcceptsPort(%d) = %v, want %v", port, got, want)
		}
	}
}

// TestSummaryAgreesWithCheck samples public addresses and checks that every
// port Check accepts for one of them is in the summary.
func TestSummaryAgreesWithCheck(t *testing.T) {
	p := mustPolicy(t, []string{"reject 1.0.0.0/8:80", "accept *4:79-81", "reject *:*"})
	addrs := []string{"1.2.3.4", "8.8.8.8", "2606:4700::1"}
	for port := uint16(1); port < 200; port++ {
		for _, a := range addrs {
			if p.Check(netip.AddrPortFrom(netip.MustParseAddr(a), port)) == nil && !p.AcceptsPort(port) {
				t.Fatalf("%s:%d accepted but port not in summary %v", a, port, p.Summary())
			}
		}
	}
	if !p.AcceptsPort(80) {
		t.Fatalf("80 is accepted for 8.8.8.8, summary %v", p.Summary())
	}
}

func TestDefaultExitRules(t *testing.T) {
	p := mustPolicy(t, DefaultExitRules)
	if want := []PortRange{{1, 24}, {26, 65535}}; !slices.Equal(p.Summary(), want) {
		t.Fatalf("Summary() = %v, want %v", p.Summary(), want)
	}
	if err := p.Check(netip.MustParseAddrPort("93.184.216.34:443")); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(netip.MustParseAddrPort("10.0.0.1:443")); !errors.Is(err, ErrRefusedByPolicy) {
		t.Fatalf("private destination: %v", err)
	}
}

func BenchmarkCheck(b *testing.B) {
	p := mustPolicy(b, DefaultExitRules)
	addrs := []netip.AddrPort{
		netip.MustParseAddrPort("93.184.216.34:443"),
		netip.MustParseAddrPort("[2606:2800:220:1::1]:80"),
		netip.MustParseAddrPort("10.0.0.1:80"),
	}
	for i := range b.N {
		p.Check(addrs[i%len(addrs)])
	}
}

func uncheckedPolicy(t *testing.T, lines []string, opts ...PolicyOption) *ExitPolicy {
	t.Helper()
	var rules []Rule
	for _, l := range lines {
		r, err := ParseRule(l)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	return NewExitPolicy(rules, opts...)
}
