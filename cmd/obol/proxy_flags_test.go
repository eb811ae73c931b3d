package main

import (
	"context"
	"strings"
	"testing"

	"github.com/obolnet/obol/circuit/client"
)

// Bad `obol proxy` flags exit 2 naming the flag, the value and why.
func TestProxyFlags(t *testing.T) {
	const boot = "/ip4/127.0.0.1/udp/1/quic-v1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, `flag -bootstrap: at least one bootstrap peer`},
		{[]string{"--bootstrap", boot, "--hops", "9"}, `invalid value "9" for flag -hops`},
		{[]string{"--bootstrap", boot, "--hops", "0"}, `invalid value "0" for flag -hops`},
		{[]string{"--bootstrap", boot, "--price-limit", "cheap"}, `invalid value "cheap" for flag -price-limit`},
		{[]string{"--bootstrap", boot, "--price-limit", "10,x"}, `invalid value "10,x" for flag -price-limit`},
		{[]string{"--bootstrap", "/ip4/127.0.0.1/tcp/1"}, `does not end in /p2p/PEER-ID`},
		{[]string{"--bootstrap", boot, "extra"}, `unexpected argument "extra"`},
		{[]string{"--bootstrap", boot, "--prebuilt", "-1"}, `invalid value "-1" for flag -prebuilt`},
	} {
		code, _, stderr := runCmd(context.Background(), append([]string{"proxy"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	o, code, ok := proxyFlags([]string{"--bootstrap", boot, "--price-limit", "2000,50", "--hops", "5"}, new(strings.Builder))
	if !ok || code != 0 || o.hops != 5 || o.price == nil || o.price.PerMiB != 2000 || o.price.PerCircuit != 50 {
		t.Fatalf("parsed %+v, code %d", o, code)
	}
	if o.prebuilt != 2 || o.noOptimistic {
		t.Fatalf("defaults: prebuilt %d, no optimistic data %v", o.prebuilt, o.noOptimistic)
	}
	o, _, ok = proxyFlags([]string{"--bootstrap", boot, "--prebuilt", "0", "--no-optimistic-data"}, new(strings.Builder))
	if !ok || o.prebuilt != 0 || !o.noOptimistic {
		t.Fatalf("parsed prebuilt %d, no optimistic data %v", o.prebuilt, o.noOptimistic)
	}
	// The exit age is on by default; 0 waives it, for local test networks.
	cfg := o.clientConfig(nil)
	if cfg.MinExitAge != client.DefaultMinExitAge || cfg.MinGuardAge != client.DefaultMinGuardAge {
		t.Fatalf("default ages: guard %v, exit %v", cfg.MinGuardAge, cfg.MinExitAge)
	}
	o, _, ok = proxyFlags([]string{"--bootstrap", boot, "--min-guard-age", "0", "--min-exit-age", "0"}, new(strings.Builder))
	if cfg := o.clientConfig(nil); !ok || cfg.MinExitAge >= 0 || cfg.MinGuardAge >= 0 {
		t.Fatalf("ages 0: guard %v, exit %v, want both waived (negative)", cfg.MinGuardAge, cfg.MinExitAge)
	}
	o, _, ok = proxyFlags([]string{"--bootstrap", boot, "--reduced-padding"}, new(strings.Builder))
	if !ok || !o.reducedPadding {
		t.Fatalf("--reduced-padding: ok %v, reduced %v", ok, o.reducedPadding)
	}
	if cfg := o.clientConfig(nil); cfg.FrontPadding {
		t.Fatal("FRONT padding without --front-padding")
	}
	o, _, ok = proxyFlags([]string{"--bootstrap", boot, "--front-padding"}, new(strings.Builder))
	if cfg := o.clientConfig(nil); !ok || !cfg.FrontPadding {
		t.Fatalf("--front-padding: ok %v, FRONT %v", ok, cfg.FrontPadding)
	}
}
