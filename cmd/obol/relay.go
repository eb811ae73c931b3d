package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/internal/status"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/router"
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

// relayOptions are everything `obol relay` takes.
type relayOptions struct {
	cfg node.RelayConfig
	log logFlags
	obs observeFlags
}

// relayFlags parses `obol relay`'s flags into a relay configuration.
func relayFlags(args []string, w io.Writer) (node.RelayConfig, logFlags, int, bool) {
	o, code, ok := parseRelayFlags(args, w)
	return o.cfg, o.log, code, ok
}

// parseRelayFlags parses `obol relay`'s flags and its config file.
func parseRelayFlags(args []string, w io.Writer) (relayOptions, int, bool) {
	o := relayOptions{cfg: node.RelayConfig{
		DataDir:   defaultDataDir(),
		Roles:     descriptor.RoleRelay | descriptor.RoleGuard,
		Bandwidth: node.DefaultBandwidth,
		Lifetime:  node.DefaultLifetime,
		Republish: node.DefaultRepublish,
	}}
	cfg := &o.cfg
	pay := pay.RelayPayment{PerMiB: 1000, PerCircuit: 1000, PrepayBytes: pay.DefaultPrepayBytes,
		FreeBytes: pay.DefaultFreeBytes, Grace: 30 * time.Second, SettleDelay: time.Minute}
	fs := newFlagSet("relay", "[flags]", w)
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "`directory` for the relay's keys (created 0700; key files 0600)")
	fs.Var(multiaddrsValue{&cfg.Listen}, "listen", "comma-separated `multiaddrs` to listen on (default "+strings.Join(defaultRelayListen, ",")+")")
	fs.Var(multiaddrsValue{&cfg.Announce}, "announce", "comma-separated `multiaddrs` to publish instead of the listen addresses (behind NAT)")
	fs.Var(bootstrapValue{&cfg.Bootstrap}, "bootstrap", "comma-separated /p2p/ `multiaddrs` of relays to join through (none for the first relay)")
	fs.Var(rolesValue{&cfg.Roles}, "roles", "comma-separated `roles`: relay, guard, exit, intro, rendezvous (relay is implied)")
	fs.Var(rulesValue{&cfg.ExitPolicy}, "exit-policy", "one exit `rule`, e.g. \"accept *:80,443\" or \"reject 10.0.0.0/8:*\"; repeat for more, first match wins (default \""+strings.Join(router.DefaultExitRules, "\", \"")+"\")")
	fs.BoolVar(&cfg.AllowLoopback, "allow-loopback", false, "let the exit reach loopback addresses (local test networks only: it opens the relay's own host to its clients)")
	fs.BoolVar(&cfg.AllowPrivateDestinations, "exit-allow-private-destinations-unsafe", false, "let the exit's rules open private-use ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7): private deployments only, it opens the exit's own network to every client")
	fastOpen := true
	fs.BoolVar(&fastOpen, "exit-fast-open", true, "ask for TCP Fast Open on the exit's connections: to a server that gave the exit a cookie before, a stream's first data rides in the SYN (one round trip less to the first byte); =false connects as usual")
	fs.BoolVar(&cfg.SkipReachCheck, "skip-reach-check", false, "publish the listen or -announce addresses without asking other relays to dial them back (local test networks only)")
	fs.BoolVar(&cfg.NoLinkPadding, "no-link-padding", false, "send no padding on idle links, and ask peers to send none (saves about 0.7 MB per idle link per hour each way)")
	keptLinks := node.DefaultKeptLinks
	fs.Var(intValue{&keptLinks, 0, 1 << 16}, "kept-links", "behind a cone NAT, keep a direct connection to this `count` of public relays, so that circuits reach the relay without a hole punch (0: none)")
	fs.BoolVar(&cfg.ReachPrivate, "reach-private", false, "check private addresses too, and dial them back for other relays (test networks in private address ranges only)")
	fs.Var(bytesValue{&cfg.Bandwidth}, "bandwidth", "advertised bandwidth in `bytes` per second, e.g. 10MiB")
	fs.Var(durationValue{&cfg.Lifetime, node.MinLifetime, node.MaxLifetime}, "lifetime", "how long each published descriptor is valid, as a `duration`")
	fs.Var(durationValue{&cfg.Republish, node.MinRepublish, view.MaxRepublish}, "republish", "how often the descriptor is published again, as a `duration` of at most half of -lifetime and at most 1h")
	fs.Var(mintValue{&pay.Mint}, "mint", "charge for circuits, paid in ecash of the mint at this `URL` (default: a free relay)")
	fs.Var(msatValue{&pay.PerMiB}, "price-per-mib", "with -mint, the `amount` charged per MiB of cells, in msat or e.g. 2sat")
	fs.Var(msatValue{&pay.PerCircuit}, "price-per-circuit", "with -mint, the `amount` charged per circuit, in msat or e.g. 2sat")
	fs.Var(bytesValue{&pay.PrepayBytes}, "prepay", "with -mint, how many `bytes` of traffic clients must pay ahead")
	fs.Var(bytesValue{&pay.FreeBytes}, "free", "with -mint, the `bytes` a circuit may move before it has paid (to open its channels)")
	fs.BoolVar(&pay.DirectMintConnectionUnsafe, "direct-mint-connection-unsafe", false, "with -mint, settle with the mint straight from the relay's address instead of through circuits of the network; the mint learns which relay closes which channels")
	fs.Var(durationValue{&pay.Grace, time.Second, time.Hour}, "grace", "with -mint, how long a circuit may owe before it is torn down, a `duration`")
	fs.Var(durationValue{&pay.SettleDelay, 0, 24 * time.Hour}, "settle-after", "with -mint, close a channel between this `duration` and ten times it after its circuit ends")
	o.log.register(fs, slog.LevelInfo)
	o.obs.register(fs)
	src, code, ok := parseWithConfig(fs, args)
	if !ok {
		return o, code, false
	}
	if code, ok := checkRelayFlags(fs, src, cfg); !ok {
		return o, code, false
	}
	cfg.ExitNoFastOpen = !fastOpen
	cfg.KeptLinks = keptLinks
	if keptLinks == 0 {
		cfg.KeptLinks = -1 // none
	}
	if code, ok := checkPayFlags(fs, src, &pay); !ok {
		return o, code, false
	}
	if pay.Mint != "" {
		pay.SettleMaxDelay = 10 * pay.SettleDelay
		cfg.Payment = &pay
	}
	if code, ok := o.obs.check(fs, src); !ok {
		return o, code, false
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = defaultRelayListen
	}
	return o, 0, true
}

// checkRelayFlags checks what no single flag can.
func checkRelayFlags(fs *flag.FlagSet, src *origin, cfg *node.RelayConfig) (int, bool) {
	if cfg.DataDir == "" {
		return src.invalid(fs, "data-dir", "", "no home directory to default to; give a directory"), false
	}
	if cfg.Republish > cfg.Lifetime/2 {
		why := fmt.Sprintf("must be at most half of -lifetime (%v), so the descriptor is renewed before it expires", cfg.Lifetime)
		return src.invalid(fs, "republish", cfg.Republish.String(), why), false
	}
	if len(cfg.ExitPolicy) > 0 && !cfg.Roles.Has(descriptor.RoleExit) {
		return src.invalid(fs, "exit-policy", strings.Join(cfg.ExitPolicy, "; "), "the relay is not an exit; add exit to roles"), false
	}
	if cfg.AllowLoopback && !cfg.Roles.Has(descriptor.RoleExit) {
		return src.invalid(fs, "allow-loopback", "true", "the relay is not an exit; add exit to roles"), false
	}
	return 0, true
}

// relayPayFlags are the relay flags that only mean something with -mint.
var relayPayFlags = []string{"price-per-mib", "price-per-circuit", "prepay", "free", "grace", "settle-after", "direct-mint-connection-unsafe"}

// checkPayFlags refuses payment terms without a mint and a paid relay
// that charges nothing.
func checkPayFlags(fs *flag.FlagSet, src *origin, pay *pay.RelayPayment) (int, bool) {
	code, ok := 0, true
	fs.Visit(func(f *flag.Flag) {
		if ok && pay.Mint == "" && slices.Contains(relayPayFlags, f.Name) {
			code, ok = src.invalid(fs, f.Name, f.Value.String(), "it sets a payment term; give -mint to charge for circuits"), false
		}
	})
	if ok && pay.Mint != "" && pay.PerMiB == 0 && pay.PerCircuit == 0 {
		return src.invalid(fs, "price-per-mib", "0", "with -price-per-circuit 0 the relay charges nothing; leave out -mint for a free relay"), false
	}
	return code, ok
}

// runRelay is `obol relay`.
func runRelay(ctx context.Context, args []string, e env) int {
	o, code, ok := parseRelayFlags(args, e.stderr)
	if !ok {
		return code
	}
	cfg := o.cfg
	errs := status.NewErrorCounter()
	log := slog.New(errs.Handler(o.log.logger(e.stderr).Handler()))
	cfg.Logger = log
	r, err := node.OpenRelay(cfg)
	if err != nil {
		log.Error("relay did not start", "err", err)
		return exitFail
	}
	defer r.Close()
	log.Info("relay started", "peer", r.ID(), "data_dir", cfg.DataDir)
	rs := node.NewRelayStatus(r, errs)
	if p := r.Payments(); p != nil {
		rs.SetPayments(p)
		log.Info("charging for circuits", "per_mib_msat", cfg.Payment.PerMiB, "per_circuit_msat", cfg.Payment.PerCircuit, "mint", cfg.Payment.Mint)
	}
	obs, err := o.obs.open(rs, e.stdout, log)
	if err != nil {
		log.Error("relay did not start", "err", err)
		return exitFail
	}
	printRelayAddrs(e.stdout, r)
	err = obs.run(ctx, r.Run, rs.Run)
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
