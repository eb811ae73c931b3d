package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/obolnet/obol/cmd/internal/node"
	"github.com/obolnet/obol/descriptor"
)

// defaultRelayListen listens on every interface, QUIC first.
var defaultRelayListen = []string{"/ip4/0.0.0.0/udp/7400/quic-v1", "/ip4/0.0.0.0/tcp/7400"}

// defaultDataDir is ~/.obol, or "" when there is no home directory.
func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".obol")
}

// relayFlags parses `obol relay`'s flags into a relay configuration.
func relayFlags(args []string, w io.Writer) (node.RelayConfig, logFlags, int, bool) {
	cfg := node.RelayConfig{
		DataDir:   defaultDataDir(),
		Roles:     descriptor.RoleRelay | descriptor.RoleGuard,
		Bandwidth: node.DefaultBandwidth,
		Lifetime:  node.DefaultLifetime,
		Republish: node.DefaultRepublish,
	}
	var lf logFlags
	fs := newFlagSet("relay", "[flags]", w)
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "`directory` for the relay's keys (created 0700; key files 0600)")
	fs.Var(multiaddrsValue{&cfg.Listen}, "listen", "comma-separated `multiaddrs` to listen on (default "+strings.Join(defaultRelayListen, ",")+")")
	fs.Var(multiaddrsValue{&cfg.Announce}, "announce", "comma-separated `multiaddrs` to publish instead of the listen addresses (behind NAT)")
	fs.Var(bootstrapValue{&cfg.Bootstrap}, "bootstrap", "comma-separated /p2p/ `multiaddrs` of relays to join through (none for the first relay)")
	fs.Var(rolesValue{&cfg.Roles}, "roles", "comma-separated `roles`: relay, guard, exit, intro, rendezvous (relay is implied)")
	fs.Var(bytesValue{&cfg.Bandwidth}, "bandwidth", "advertised bandwidth in `bytes` per second, e.g. 10MiB")
	fs.Var(durationValue{&cfg.Lifetime, node.MinLifetime, node.MaxLifetime}, "lifetime", "how long each published descriptor is valid, as a `duration`")
	fs.Var(durationValue{&cfg.Republish, node.MinRepublish, node.MaxLifetime / 2}, "republish", "how often the descriptor is published again, as a `duration` of at most half of -lifetime")
	lf.register(fs, slog.LevelInfo)
	if code, ok := parse(fs, args); !ok {
		return cfg, lf, code, false
	}
	if code, ok := checkRelayFlags(fs, &cfg); !ok {
		return cfg, lf, code, false
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = defaultRelayListen
	}
	return cfg, lf, 0, true
}

// checkRelayFlags checks what no single flag can.
func checkRelayFlags(fs *flag.FlagSet, cfg *node.RelayConfig) (int, bool) {
	if cfg.DataDir == "" {
		return usageError(fs, "data-dir", "", "no home directory to default to; give a directory"), false
	}
	if cfg.Republish > cfg.Lifetime/2 {
		why := fmt.Sprintf("must be at most half of -lifetime (%v), so the descriptor is renewed before it expires", cfg.Lifetime)
		return usageError(fs, "republish", cfg.Republish.String(), why), false
	}
	return 0, true
}

// runRelay is `obol relay`.
func runRelay(ctx context.Context, args []string, e env) int {
	cfg, lf, code, ok := relayFlags(args, e.stderr)
	if !ok {
		return code
	}
	log := lf.logger(e.stderr)
	cfg.Logger = log
	r, err := node.OpenRelay(cfg)
	if err != nil {
		log.Error("relay did not start", "err", err)
		return exitFail
	}
	defer r.Close()
	log.Info("relay started", "peer", r.ID(), "data_dir", cfg.DataDir)
	printRelayAddrs(e.stdout, r)
	err = r.Run(ctx)
	log.Info("relay stopping")
	if err != nil {
		log.Error("relay failed", "err", err)
		return exitFail
	}
	return exitOK
}

// printRelayAddrs tells the operator how other nodes reach this relay.
func printRelayAddrs(w io.Writer, r *node.Relay) {
	fmt.Fprintf(w, "peer ID: %s\n", r.ID())
	fmt.Fprintf(w, "addresses (pass one to other nodes' --bootstrap):\n")
	for _, a := range r.Addrs() {
		fmt.Fprintf(w, "  %s\n", a)
	}
}
