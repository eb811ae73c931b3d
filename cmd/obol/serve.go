package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/internal/status"
)

// serveResample is how often a hidden service samples the DHT again.
const serveResample = 10 * time.Minute

// serviceKeyFile is the hidden service's identity in its data directory:
// losing it loses the address, leaking it lets others impersonate it.
const serviceKeyFile = "service.key"

type serveOptions struct {
	client  node.ClientConfig
	target  string
	port    int
	sample  int
	timeout time.Duration
	authDir string
	pow     bool
	// for the circuits that carry the wallet's requests to the mint
	allowSameSubnet bool
	minGuardAge     time.Duration
	minExitAge      time.Duration
	pay             payFlags
	log             logFlags
	obs             observeFlags
}

func defaultServeDir() string {
	if d := defaultDataDir(); d != "" {
		return filepath.Join(d, "serve")
	}
	return ""
}

func serveFlags(args []string, w io.Writer) (serveOptions, int, bool) {
	o := serveOptions{client: node.ClientConfig{DataDir: defaultServeDir()}, port: 80, sample: 200, timeout: 60 * time.Second}
	fs := newFlagSet("serve", "--bootstrap ADDRS --target HOST:PORT [flags]", w)
	fs.Var(bootstrapValue{&o.client.Bootstrap}, "bootstrap", "comma-separated /p2p/ `multiaddrs` of relays to join through (required)")
	fs.StringVar(&o.target, "target", "", "local `host:port` the service forwards connections to (required)")
	fs.Var(intValue{&o.port, 1, 65535}, "port", "the service's virtual `port` clients connect to")
	fs.StringVar(&o.client.DataDir, "data-dir", o.client.DataDir, "`directory` for the service key, descriptor cache and guards")
	fs.Var(intValue{&o.sample, 10, maxSample}, "sample", "how many relays the first view should hold, a `count` (fewer is reported)")
	fs.Var(durationValue{&o.timeout, time.Second, time.Hour}, "timeout", "give up joining the DHT after this `duration`")
	fs.StringVar(&o.authDir, "authorized-clients", "", "`directory` of *.auth client keys: only these clients can reach the service (default: anyone with the address)")
	fs.BoolVar(&o.pow, "pow", false, "ask clients for a proof of work when introductions are lost to load")
	fs.BoolVar(&o.allowSameSubnet, "allow-same-subnet", false, "let relays of one /16 share a path (local test networks on loopback only)")
	fs.DurationVar(&o.minGuardAge, "min-guard-age", client.DefaultMinGuardAge, "how long a relay must have been seen before it may be a guard; 0 for local test networks, whose relays are all new")
	fs.DurationVar(&o.minExitAge, "min-exit-age", client.DefaultMinExitAge, "how long a relay must have been seen before it may be an exit; 0 for local test networks, whose relays are all new")
	o.pay.register(fs)
	o.obs.register(fs)
	o.log.register(fs, slog.LevelInfo)
	src, code, ok := parseWithConfig(fs, args)
	if !ok {
		return o, code, false
	}
	if code, ok := o.obs.check(fs, src); !ok {
		return o, code, false
	}
	if code, ok := o.pay.check(fs); !ok {
		return o, code, false
	}
	switch {
	case len(o.client.Bootstrap) == 0:
		return o, usageError(fs, "bootstrap", "", "at least one bootstrap peer is needed to join"), false
	case o.target == "":
		return o, usageError(fs, "target", "", "the local address to forward to is required"), false
	case o.client.DataDir == "":
		return o, usageError(fs, "data-dir", "", "the service key must be kept somewhere"), false
	}
	if _, _, err := net.SplitHostPort(o.target); err != nil {
		return o, usageError(fs, "target", o.target, "want host:port"), false
	}
	return o, 0, true
}

// runServe is `obol serve`: a hidden service forwarding to a local target.
func runServe(ctx context.Context, args []string, e env) int {
	o, code, ok := serveFlags(args, e.stderr)
	if !ok {
		return code
	}
	errs := status.NewErrorCounter()
	log := slog.New(errs.Handler(o.log.logger(e.stderr).Handler()))
	cfg := obol.ClientConfig{DataDir: o.client.DataDir, Bootstrap: o.client.Bootstrap, Prebuilt: -1,
		Sample: o.sample, Resample: serveResample, JoinTimeout: o.timeout, Logger: log,
		AllowSameSubnet: o.allowSameSubnet, MinGuardAge: o.minGuardAge, MinExitAge: o.minExitAge}
	if o.minGuardAge <= 0 {
		cfg.MinGuardAge = -1
	}
	if o.minExitAge <= 0 {
		cfg.MinExitAge = -1
	}
	cfg.Pay = o.pay.config()
	key, err := hidden.LoadKey(filepath.Join(o.client.DataDir, serviceKeyFile))
	if err != nil {
		log.Error("service key", "err", err)
		return exitFail
	}
	c, err := obol.NewClient(cfg)
	if err != nil {
		log.Error("client did not start", "err", err)
		return exitFail
	}
	sc := obol.ServiceConfig{Key: key, PoW: o.pow}
	if o.authDir != "" {
		if sc.AuthorizedClients, err = hidden.LoadAuthorizedClients(o.authDir); err != nil {
			log.Error("hidden service did not start", "err", err)
			return exitFail
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	l, err := c.ListenService(ctx, sc)
	if err != nil {
		log.Error("hidden service did not start", "err", err)
		return exitFail
	}
	defer l.Close()
	cs := node.NewClientStatus(status.KindServe, c, nil, errs)
	if o.pay.mint != "" {
		cs.SetPayments(node.PayerPayments{P: c})
	}
	addr, _, _ := net.SplitHostPort(l.Addr().String())
	fmt.Fprintf(e.stdout, "obol hidden service up\n  address %s (port %d → %s)\n  try: curl --socks5-hostname 127.0.0.1:9050 http://%s:%d/\n",
		addr, o.port, o.target, addr, o.port)
	o.pay.print(e.stdout, c.Wallet())
	obs, err := o.obs.open(cs, e.stdout, log)
	if err != nil {
		log.Error("hidden service did not start", "err", err)
		return exitFail
	}
	serve := func(ctx context.Context) error {
		return hidden.Forward(ctx, l, map[uint16]string{uint16(o.port): o.target})
	}
	if err := obs.run(ctx, serve); err != nil && ctx.Err() == nil {
		log.Error("hidden service stopped", "err", err)
		return exitFail
	}
	return exitOK
}
