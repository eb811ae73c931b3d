package router

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/obolnet/obol/circuit/circuittest"
)

// TestCheckEmbeddedForms: every IPv6 spelling of a refused IPv4 address
// is refused like the address itself.
func TestCheckEmbeddedForms(t *testing.T) {
	p := mustPolicy(t, []string{"accept *:*"})
	tests := []struct {
		addr   string
		accept bool
	}{
		{"[::ffff:127.0.0.1]:80", false},      // IPv4-mapped loopback
		{"[::ffff:0:7f00:1]:80", false},       // IPv4-translated (SIIT) loopback
		{"[::ffff:0:a00:1]:80", false},        // IPv4-translated 10.0.0.1
		{"[::ffff:0:c0a8:101]:80", false},     // IPv4-translated 192.168.1.1
		{"[::ffff:0:a9fe:a9fe]:80", false},    // IPv4-translated metadata 169.254.169.254
		{"[64:ff9b::7f00:1]:80", false},       // NAT64 of loopback
		{"[64:ff9b::10.0.0.1]:80", false},     // NAT64 of private
		{"[64:ff9b::192.168.1.1]:80", false},  // NAT64 of private
		{"[64:ff9b:1::10.0.0.1]:80", false},   // local-use NAT64
		{"[2002:a00:1::1]:80", false},         // 6to4 of 10.0.0.1
		{"[2002:c0a8:101::1]:80", false},      // 6to4 of 192.168.1.1
		{"[2002:7f00:1::]:80", false},         // 6to4 of loopback
		{"[::127.0.0.1]:80", false},           // IPv4-compatible loopback
		{"[::ffff:0:5db8:d822]:80", true},     // IPv4-translated public address
		{"[64:ff9b::93.184.216.34]:80", true}, // NAT64 of a public address
		{"[2002:5db8:d822::1]:80", true},      // 6to4 of a public address
		{"[::ffff:93.184.216.34]:80", true},   // IPv4-mapped public address
		{"[2606:2800:220:1:248:1893:25c8:1946]:80", true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := p.Check(netip.MustParseAddrPort(tt.addr))
			if tt.accept != (err == nil) || (err != nil && !errors.Is(err, ErrRefusedByPolicy)) {
				t.Fatalf("Check(%s) = %v, want accept=%v", tt.addr, err, tt.accept)
			}
		})
	}
}

// TestCheckOwnAndRelayAddrs: the exit's own addresses are refused on
// every port, known relays' listening addresses on their port.
func TestCheckOwnAndRelayAddrs(t *testing.T) {
	own := func() []netip.Addr {
		return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("2606:2800:220:1::7"), netip.MustParseAddr("127.0.0.1")}
	}
	relays := map[netip.AddrPort]bool{netip.MustParseAddrPort("1.2.3.4:4001"): true, netip.MustParseAddrPort("[2a00::1]:4001"): true}
	isRelay := func(ap netip.AddrPort) bool { return relays[ap] }
	base := []PolicyOption{RejectOwnAddrs(own), RejectRelayAddrs(isRelay)}
	tests := []struct {
		name   string
		opts   []PolicyOption
		addr   string
		accept bool
		why    string
	}{
		{"own v4", base, "93.184.216.34:443", false, "own address"},
		{"own v4 other port", base, "93.184.216.34:22", false, "own address"},
		{"own v4 mapped", base, "[::ffff:93.184.216.34]:443", false, "own address"},
		{"own v6", base, "[2606:2800:220:1::7]:80", false, "own address"},
		{"neighbour of own", base, "93.184.216.35:443", true, ""},
		{"relay listening port", base, "1.2.3.4:4001", false, "relay"},
		{"relay v6 listening port", base, "[2a00::1]:4001", false, "relay"},
		{"relay host, web port", base, "1.2.3.4:443", true, ""},
		{"own loopback on a test exit", append([]PolicyOption{AllowLoopback()}, base...), "127.0.0.1:8080", true, ""},
		{"own loopback on a real exit", base, "127.0.0.1:8080", false, "reserved"},
		{"without the options", nil, "93.184.216.34:443", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPolicy(t, []string{"accept *:*"}, tt.opts...)
			err := p.Check(netip.MustParseAddrPort(tt.addr))
			if tt.accept != (err == nil) || (err != nil && (!errors.Is(err, ErrRefusedByPolicy) || !strings.Contains(err.Error(), tt.why))) {
				t.Fatalf("Check(%s) = %v, want accept=%v (%s)", tt.addr, err, tt.accept, tt.why)
			}
		})
	}
}

// TestResolveFullyQualified: names are asked as fully qualified names, so
// the exit's resolver never tries its search domains.
func TestResolveFullyQualified(t *testing.T) {
	d := circuittest.StartTestDNS(t, map[string][]string{"example.com.": {"93.184.216.34"}})
	r := d.Resolver()
	p := mustPolicy(t, []string{"accept *:*"}, WithResolver(r))
	ctx := context.Background()
	if _, err := p.CheckHost(ctx, "example.com", 80); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CheckHost(ctx, "example.com.", 80); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CheckHost(ctx, "intranet", 80); !errors.Is(err, ErrResolveFailed) {
		t.Fatalf("intranet: %v, want ErrResolveFailed", err)
	}
	asked := d.Asked()
	if len(asked) == 0 {
		t.Fatal("no query reached the server")
	}
	for _, q := range asked {
		if q != "example.com." && q != "intranet." {
			t.Fatalf("the resolver asked %q: a search domain was applied", q)
		}
	}
	for _, bad := range []string{".", ".example.com", "a..b", "example.com..", strings.Repeat("a", 254)} {
		if _, err := p.Resolve(ctx, bad); !errors.Is(err, ErrResolveFailed) {
			t.Fatalf("Resolve(%q) = %v, want ErrResolveFailed", bad, err)
		}
	}
}

// TestCheckHostLocalhostNames: names under localhost are loopback (RFC
// 6761), whatever the resolver says.
func TestCheckHostLocalhostNames(t *testing.T) {
	r := circuittest.StartTestDNS(t, map[string][]string{"x.localhost.": {"93.184.216.34"}}).Resolver()
	p := mustPolicy(t, []string{"accept *:*"}, WithResolver(r))
	for _, h := range []string{"localhost", "LOCALHOST.", "x.localhost", "a.b.localhost."} {
		if _, err := p.CheckHost(context.Background(), h, 80); !errors.Is(err, ErrRefusedByPolicy) {
			t.Fatalf("CheckHost(%q) = %v, want ErrRefusedByPolicy", h, err)
		}
	}
}

func TestCheckRules(t *testing.T) {
	tests := []struct {
		name  string
		rules []string
		opts  []PolicyOption
		bad   string // substring of the error; "" for a valid policy
	}{
		{"default", DefaultExitRules, nil, ""},
		{"private accept", []string{"accept 10.200.0.0/16:*", "accept *:*"}, nil, `rule 1 "accept 10.200.0.0/16:*": 10.0.0.0/8 is refused`},
		{"private accept allowed", []string{"accept 10.200.0.0/16:*"}, []PolicyOption{AllowPrivateDestinations()}, ""},
		{"private accept partly re-opened", []string{"accept 10.0.0.0/8:80"}, []PolicyOption{AllowReserved(netip.MustParsePrefix("10.9.0.0/16"))}, ""},
		{"private reject is fine", []string{"reject 10.0.0.0/8:*", "accept *:*"}, nil, ""},
		{"loopback accept", []string{"accept 127.0.0.1:8080"}, nil, "127.0.0.0/8 is refused"},
		{"loopback accept on a test exit", []string{"accept 127.0.0.1:8080"}, []PolicyOption{AllowLoopback()}, ""},
		{"ula accept", []string{"accept [fd00::]/8:*"}, nil, "fc00::/7 is refused"},
		{"ula accept allowed", []string{"accept [fd00::]/8:*"}, []PolicyOption{AllowPrivateDestinations()}, ""},
		{"shadowed reject", []string{"accept *:*", "reject *:25"}, nil, `rule 2 "reject *:25" is covered by the earlier rule 1 "accept *:*"`},
		{"shadowed by prefix", []string{"reject 1.0.0.0/8:*", "accept 1.2.3.0/24:80"}, nil, "covered by the earlier rule 1"},
		{"shadowed by family", []string{"accept *4:*", "reject 1.2.3.4:80"}, nil, "covered"},
		{"not shadowed: other family", []string{"accept *6:*", "reject 1.2.3.4:80"}, nil, ""},
		{"not shadowed: wider ports", []string{"reject *:25", "accept *:*"}, nil, ""},
		{"not shadowed: wider prefix", []string{"reject 1.2.3.0/24:*", "accept 1.0.0.0/8:*"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseExitPolicy(tt.rules, tt.opts...)
			switch {
			case tt.bad == "" && err != nil:
				t.Fatalf("ParseExitPolicy(%q) = %v", tt.rules, err)
			case tt.bad != "" && (!errors.Is(err, ErrRuleNeverMatches) || !strings.Contains(err.Error(), tt.bad)):
				t.Fatalf("ParseExitPolicy(%q) = %v, want %q", tt.rules, err, tt.bad)
			}
		})
	}
}

// TestPeerstoreRelayAddrs: the router refuses exit streams to the TCP
// listening address of any peer its host knows.
func TestPeerstoreRelayAddrs(t *testing.T) {
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	ps.AddAddrs(peer.ID("relay"), []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/4001"), ma.StringCast("/ip6/2a00::1/udp/4001/quic-v1")}, time.Hour)
	p := mustPolicy(t, []string{"accept *:*"}).withRelayAddrs(peerstoreRelayAddrs(ps))
	for _, tt := range []struct {
		addr   string
		accept bool
	}{
		{"1.2.3.4:4001", false},
		{"[::ffff:1.2.3.4]:4001", false},
		{"1.2.3.4:443", true},
		{"[2a00::1]:4001", true}, // a QUIC (UDP) listener is not reachable by an exit's TCP stream
		{"1.2.3.5:4001", true},
	} {
		if err := p.Check(netip.MustParseAddrPort(tt.addr)); tt.accept != (err == nil) {
			t.Fatalf("Check(%s) = %v, want accept=%v", tt.addr, err, tt.accept)
		}
	}
}
