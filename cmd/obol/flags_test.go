package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/descriptor"
)

const validBoot = "/ip4/127.0.0.1/udp/7400/quic-v1/p2p/12D3KooWQ32pcyMGz4Ux1p88QTFjikZcVjYZvz2HiJeXQQFZQsF1"

// TestFlagErrors checks that each bad value is refused, with exit code 2,
// by a message naming the flag, the value and why.
func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // the message, or a prefix of it
	}{
		{[]string{"relay", "--roles", "relay,bogus"}, `invalid value "relay,bogus" for flag -roles: unknown role "bogus"`},
		{[]string{"relay", "--lifetime", "150h"}, `invalid value "150h" for flag -lifetime: want 1m0s to 144h0m0s`},
		{[]string{"relay", "--lifetime", "soon"}, `invalid value "soon" for flag -lifetime: not a duration`},
		{[]string{"relay", "--republish", "0s"}, `invalid value "0s" for flag -republish: want 1s to 1h0m0s`},
		{[]string{"relay", "--lifetime", "1h", "--republish", "45m"}, `invalid value "45m0s" for flag -republish: must be at most half of -lifetime (1h0m0s)`},
		{[]string{"relay", "--bandwidth", "0"}, `invalid value "0" for flag -bandwidth: want more than 0`},
		{[]string{"relay", "--bandwidth", "10XB"}, `invalid value "10XB" for flag -bandwidth: want a byte count`},
		{[]string{"relay", "--listen", "127.0.0.1:7400"}, `invalid value "127.0.0.1:7400" for flag -listen: "127.0.0.1:7400" is not a multiaddr`},
		{[]string{"relay", "--announce", "/ip4/1.2.3.4/tcp/99999"}, `invalid value "/ip4/1.2.3.4/tcp/99999" for flag -announce: "/ip4/1.2.3.4/tcp/99999" is not a multiaddr`},
		{[]string{"relay", "--bootstrap", "/ip4/127.0.0.1/tcp/7400"}, `invalid value "/ip4/127.0.0.1/tcp/7400" for flag -bootstrap: "/ip4/127.0.0.1/tcp/7400" does not end in /p2p/PEER-ID`},
		{[]string{"relay", "--log-format", "xml"}, `invalid value "xml" for flag -log-format: want one of text, json`},
		{[]string{"relay", "--log-level", "loud"}, `invalid value "loud" for flag -log-level: unknown level`},
		{[]string{"relay", "--data-dir", "/tmp/x", "extra"}, `obol relay: unexpected argument "extra"`},
		{[]string{"relay", "--no-such-flag"}, `flag provided but not defined: -no-such-flag`},
		{[]string{"relays"}, `invalid value "" for flag -bootstrap: at least one bootstrap peer is needed`},
		{[]string{"relays", "--bootstrap", validBoot, "-n", "0"}, `invalid value "0" for flag -n: want 1 to 1000`},
		{[]string{"relays", "--bootstrap", validBoot, "-n", "many"}, `invalid value "many" for flag -n: not an integer`},
		{[]string{"relays", "--bootstrap", validBoot, "--timeout", "0s"}, `invalid value "0s" for flag -timeout: want 1s to 1h0m0s`},
		{[]string{"testnet", "--relays", "1"}, `invalid value "1" for flag -relays: want 2 to 200`},
		{[]string{"nonsense"}, `obol: unknown command "nonsense"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			// A refused flag returns at once; one accepted by mistake
			// runs its command, which the deadline stops.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code, stdout, stderr := runCmd(ctx, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			if !strings.HasPrefix(stderr, tt.want) {
				t.Errorf("stderr:\n%s\nwant it to start with:\n%s", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestRelayFlags checks that good values reach the relay's configuration.
func TestRelayFlags(t *testing.T) {
	cfg, lf, code, ok := relayFlags([]string{
		"--data-dir", "/var/lib/obol", "--listen", "/ip4/0.0.0.0/tcp/1", "--listen", "/ip6/::/tcp/2",
		"--bootstrap", validBoot, "--bootstrap", strings.Replace(validBoot, "udp/7400/quic-v1", "tcp/7400", 1),
		"--roles", "guard,exit", "--bandwidth", "10MiB", "--lifetime", "2h", "--republish", "20m",
		"--log-format", "json", "--log-level", "debug",
	}, io.Discard)
	if !ok {
		t.Fatalf("parse failed with %d", code)
	}
	switch {
	case cfg.DataDir != "/var/lib/obol":
		t.Errorf("data dir %q", cfg.DataDir)
	case len(cfg.Listen) != 2:
		t.Errorf("listen %v", cfg.Listen)
	case len(cfg.Bootstrap) != 1 || len(cfg.Bootstrap[0].Addrs) != 2:
		t.Errorf("bootstrap %v, want one peer with two addresses", cfg.Bootstrap)
	case cfg.Roles != descriptor.RoleRelay|descriptor.RoleGuard|descriptor.RoleExit:
		t.Errorf("roles %v", cfg.Roles)
	case cfg.Bandwidth != 10<<20:
		t.Errorf("bandwidth %d", cfg.Bandwidth)
	case cfg.Lifetime != 2*time.Hour || cfg.Republish != 20*time.Minute:
		t.Errorf("lifetime %v, republish %v", cfg.Lifetime, cfg.Republish)
	case lf.format != "json" || lf.level.String() != "DEBUG":
		t.Errorf("log flags %+v", lf)
	}
}

// TestRelayFlagDefaults checks the defaults a relay starts with.
func TestRelayFlagDefaults(t *testing.T) {
	cfg, _, _, ok := relayFlags([]string{"--data-dir", "/tmp/obol"}, io.Discard)
	if !ok {
		t.Fatal("parse failed")
	}
	if len(cfg.Listen) != 2 || cfg.Roles != descriptor.RoleRelay|descriptor.RoleGuard || cfg.Lifetime != 6*24*time.Hour || cfg.Republish != 30*time.Minute {
		t.Errorf("defaults %+v", cfg)
	}
	if cfg.NoLinkPadding {
		t.Error("link padding off by default")
	}
	cfg, _, _, ok = relayFlags([]string{"--data-dir", "/tmp/obol", "--no-link-padding"}, io.Discard)
	if !ok || !cfg.NoLinkPadding {
		t.Errorf("--no-link-padding: ok %v, NoLinkPadding %v", ok, cfg.NoLinkPadding)
	}
}

// TestHelp checks that help goes to stdout with exit code 0.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}} {
		code, stdout, _ := runCmd(context.Background(), args...)
		if code != exitOK || !strings.Contains(stdout, "obol testnet") {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
		}
	}
	code, _, stderr := runCmd(context.Background(), "relay", "-h")
	if code != exitOK || !strings.Contains(stderr, "-republish") {
		t.Errorf("relay -h: exit %d, stderr %q", code, stderr)
	}
	code, _, _ = runCmd(context.Background())
	if code != exitUsage {
		t.Errorf("no arguments: exit %d, want %d", code, exitUsage)
	}
}
