package router

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/obolnet/obol/circuit/circuittest"
)

func startFakeDNS(t *testing.T, names map[string][]string) *net.Resolver {
	t.Helper()
	return circuittest.StartTestDNS(t, names).Resolver()
}

func TestCheckHost(t *testing.T) {
	r := startFakeDNS(t, map[string][]string{
		"loop.test.":    {"127.0.0.1"},
		"private.test.": {"10.0.0.1"},
		"meta.test.":    {"169.254.169.254"},
		"mapped.test.":  {"::ffff:10.0.0.1"},
		"public.test.":  {"93.184.216.34", "2606:2800:220:1::1"},
		"mixed.test.":   {"10.0.0.1", "93.184.216.34"},
		"ula.test.":     {"fd00::1"},
	})
	open := []string{"accept *:*"}
	tests := []struct {
		name    string
		host    string
		opts    []PolicyOption
		want    []string
		wantErr error
	}{
		{"loopback refused", "loop.test", nil, nil, ErrRefusedByPolicy},
		{"private refused", "private.test", nil, nil, ErrRefusedByPolicy},
		{"metadata refused", "meta.test", nil, nil, ErrRefusedByPolicy},
		{"ula refused", "ula.test", nil, nil, ErrRefusedByPolicy},
		{"loopback on test network", "loop.test", []PolicyOption{AllowLoopback()}, []string{"127.0.0.1:80"}, nil},
		{"private on test network", "private.test", []PolicyOption{AllowLoopback()}, nil, ErrRefusedByPolicy},
		{"public", "public.test", nil, []string{"93.184.216.34:80", "[2606:2800:220:1::1]:80"}, nil},
		{"mixed keeps public only", "mixed.test", nil, []string{"93.184.216.34:80"}, nil},
		{"nxdomain", "nothing.test", nil, nil, ErrResolveFailed},
		{"literal private", "10.0.0.1", nil, nil, ErrRefusedByPolicy},
		{"literal v6 loopback", "[::1]", nil, nil, ErrRefusedByPolicy},
		{"literal public", "93.184.216.34", nil, []string{"93.184.216.34:80"}, nil},
		{"literal mapped", "::ffff:127.0.0.1", nil, nil, ErrRefusedByPolicy},
		{"empty", "", nil, nil, ErrResolveFailed},
		{"too long", strings.Repeat("a", 254), nil, nil, ErrResolveFailed},
		{"malformed", "a b.test", nil, nil, ErrResolveFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]PolicyOption{WithResolver(r)}, tt.opts...)
			p := mustPolicy(t, open, opts...)
			got, err := p.CheckHost(context.Background(), tt.host, 80)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("CheckHost(%q) = %v, %v; want %v", tt.host, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckHost(%q): %v", tt.host, err)
			}
			var gs []string
			for _, a := range got {
				gs = append(gs, a.String())
			}
			if strings.Join(gs, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("CheckHost(%q) = %v, want %v", tt.host, gs, tt.want)
			}
		})
	}
}

func TestResolveUnmaps(t *testing.T) {
	r := startFakeDNS(t, map[string][]string{"mapped.test.": {"::ffff:10.0.0.1"}})
	p := NewExitPolicy(nil, WithResolver(r))
	ips, err := p.Resolve(context.Background(), "mapped.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range ips {
		if ip.Is4In6() {
			t.Fatalf("Resolve returned mapped address %v", ip)
		}
	}
}

func TestCheckHostLocalhost(t *testing.T) {
	// The system resolver maps "localhost" to loopback (hosts file or
	// RFC 6761); a non-test exit must refuse it.
	p := mustPolicy(t, []string{"accept *:*"})
	_, err := p.CheckHost(context.Background(), "localhost", 80)
	if errors.Is(err, ErrResolveFailed) {
		t.Skipf("this machine cannot resolve localhost: %v", err)
	}
	if !errors.Is(err, ErrRefusedByPolicy) {
		t.Fatalf("CheckHost(localhost) = %v, want ErrRefusedByPolicy", err)
	}
}
