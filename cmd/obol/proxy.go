package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/socks"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/internal/status"
)

// defaultProxyDir is ~/.obol/proxy: a client's cache and guards apart
// from any relay's keys.
func defaultProxyDir() string {
	if d := defaultDataDir(); d != "" {
		return filepath.Join(d, "proxy")
	}
	return ""
}

type proxyOptions struct {
	client          node.ClientConfig
	socks           string
	httpConnect     string
	hops            int
	price           *client.PriceLimit
	sample          int
	resample        time.Duration
	timeout         time.Duration
	allowSameSubnet bool
	frontPadding    bool
	reducedPadding  bool
	minGuardAge     time.Duration
	minExitAge      time.Duration
	noOptimistic    bool
	prebuilt        int
	clientKeys      string
	pay             payFlags
	log             logFlags
	obs             observeFlags
}

func proxyFlags(args []string, w io.Writer) (proxyOptions, int, bool) {
	o := proxyOptions{client: node.ClientConfig{DataDir: defaultProxyDir()}, socks: "127.0.0.1:9050",
		hops: client.DefaultHops, prebuilt: client.DefaultPrebuilt, sample: 200, resample: 10 * time.Minute, timeout: 60 * time.Second}
	fs := newFlagSet("proxy", "--bootstrap ADDRS [flags]", w)
	fs.StringVar(&o.socks, "socks", o.socks, "`address` the SOCKS5/SOCKS4a proxy listens on")
	fs.StringVar(&o.httpConnect, "http-connect", "", "`address` of an HTTP CONNECT proxy as well (default: none)")
	fs.Var(bootstrapValue{&o.client.Bootstrap}, "bootstrap", "comma-separated /p2p/ `multiaddrs` of relays to join through (required)")
	fs.StringVar(&o.client.DataDir, "data-dir", o.client.DataDir, "`directory` for the descriptor cache and the guard set")
	fs.Var(intValue{&o.hops, 1, circuit.MaxHops}, "hops", "relays per circuit, a `count` from 1 to 8")
	fs.Var(intValue{&o.prebuilt, 0, 32}, "prebuilt", "unused circuits kept ready, a `count` (0: build circuits on demand only)")
	fs.BoolVar(&o.noOptimistic, "no-optimistic-data", false, "reply to SOCKS and HTTP CONNECT only once the exit has connected (a refusal is then a reply code, not a reset)")
	fs.Var(priceValue{&o.price}, "price-limit", "the most one relay may charge, as `msat-per-MiB[,msat-per-circuit]` (default: any price)")
	fs.Var(intValue{&o.sample, 10, maxSample}, "sample", "how many relays the first view should hold, a `count` (fewer is reported)")
	fs.Var(durationValue{&o.resample, time.Minute, 24 * time.Hour}, "resample", "ask the view's sources for changes at least this often, a `duration`")
	fs.Var(durationValue{&o.timeout, time.Second, time.Hour}, "timeout", "give up joining the DHT after this `duration`")
	o.pay.register(fs)
	o.obs.register(fs)
	fs.StringVar(&o.clientKeys, "client-keys", "", "`directory` of *.key keys for hidden services that admit listed clients (created with default.key and default.auth if empty)")
	fs.BoolVar(&o.reducedPadding, "reduced-padding", false, "send less padding on idle links and ask relays for less (for metered links; easier to observe)")
	fs.BoolVar(&o.frontPadding, "front-padding", false, "pad the first seconds of every exit circuit with its middle relay (FRONT, at most 300 cells each way): pages are harder to fingerprint, at about twice the cells")
	fs.BoolVar(&o.allowSameSubnet, "allow-same-subnet", false, "let relays of one /16 share a path (local test networks on loopback only)")
	fs.DurationVar(&o.minGuardAge, "min-guard-age", client.DefaultMinGuardAge, "how long a relay must have been seen before it may be a guard; 0 for local test networks, whose relays are all new")
	fs.DurationVar(&o.minExitAge, "min-exit-age", client.DefaultMinExitAge, "how long a relay must have been seen before it may be an exit; 0 for local test networks, whose relays are all new")
	o.log.register(fs, slog.LevelInfo)
	src, code, ok := parseWithConfig(fs, args)
	if !ok {
		return o, code, false
	}
	if code, ok := o.obs.check(fs, src); !ok {
		return o, code, false
	}
	if len(o.client.Bootstrap) == 0 {
		return o, usageError(fs, "bootstrap", "", "at least one bootstrap peer is needed to join"), false
	}
	if code, ok := o.pay.check(fs); !ok {
		return o, code, false
	}
	return o, 0, true
}

// priceValue is "PER_MIB[,PER_CIRCUIT]" in msat.
type priceValue struct{ p **client.PriceLimit }

func (v priceValue) String() string {
	if v.p == nil || *v.p == nil {
		return ""
	}
	return fmt.Sprintf("%d,%d", (*v.p).PerMiB, (*v.p).PerCircuit)
}

func (v priceValue) Set(s string) error {
	mib, circ, _ := strings.Cut(s, ",")
	var l client.PriceLimit
	var err error
	if l.PerMiB, err = strconv.ParseUint(strings.TrimSpace(mib), 10, 64); err != nil {
		return errors.New("want msat per MiB, optionally followed by a comma and msat per circuit")
	}
	if circ != "" {
		if l.PerCircuit, err = strconv.ParseUint(strings.TrimSpace(circ), 10, 64); err != nil {
			return errors.New("msat per circuit is not a number")
		}
	} else {
		l.PerCircuit = ^uint64(0)
	}
	*v.p = &l
	return nil
}

// runProxy is `obol proxy`.
func runProxy(ctx context.Context, args []string, e env) int {
	o, code, ok := proxyFlags(args, e.stderr)
	if !ok {
		return code
	}
	errs := status.NewErrorCounter()
	log := slog.New(errs.Handler(o.log.logger(e.stderr).Handler()))
	cfg := o.clientConfig(log)
	if o.clientKeys != "" {
		var err error
		if cfg.ClientKeys, err = hidden.LoadClientKeys(o.clientKeys); err != nil {
			log.Error("proxy did not start", "err", err)
			return exitFail
		}
	}
	c, err := obol.NewClient(cfg)
	if err != nil {
		log.Error("client did not start", "err", err)
		return exitFail
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	if err := c.Joined(ctx); err != nil {
		log.Error("proxy did not start", "err", err)
		return exitFail
	}
	cs := node.NewClientStatus(status.KindProxy, c, c.Circuits(), errs)
	if o.pay.mint != "" {
		cs.SetPayments(node.PayerPayments{P: c})
	}
	p, err := newProxy(o, c, cs, log)
	if err != nil {
		log.Error("proxy did not start", "err", err)
		return exitFail
	}
	defer p.close()
	obs, err := o.obs.open(cs, e.stdout, log)
	if err != nil {
		log.Error("proxy did not start", "err", err)
		return exitFail
	}
	fmt.Fprintf(e.stdout, "obol proxy listening\n  SOCKS5/SOCKS4a on %s\n", p.socks.Addr())
	if p.http != nil {
		fmt.Fprintf(e.stdout, "  HTTP CONNECT on %s\n", p.http.Addr())
	}
	fmt.Fprintf(e.stdout, "  %d relays known, %d-hop circuits\n", len(c.Known()), o.hops)
	o.pay.print(e.stdout, c.Wallet())
	if err := obs.run(ctx, p.run); err != nil {
		log.Error("proxy stopped", "err", err)
		return exitFail
	}
	return exitOK
}

// clientConfig is the obol client the flags describe.
func (o proxyOptions) clientConfig(log *slog.Logger) obol.ClientConfig {
	cfg := obol.ClientConfig{DataDir: o.client.DataDir, Bootstrap: o.client.Bootstrap, Hops: o.hops,
		PriceLimit: o.price, Sample: o.sample, Resample: o.resample, JoinTimeout: o.timeout,
		AllowSameSubnet: o.allowSameSubnet, ReducedPadding: o.reducedPadding, FrontPadding: o.frontPadding, MinGuardAge: o.minGuardAge, MinExitAge: o.minExitAge, Prebuilt: o.prebuilt, Logger: log}
	if o.minGuardAge <= 0 {
		cfg.MinGuardAge = -1
	}
	if o.minExitAge <= 0 {
		cfg.MinExitAge = -1
	}
	if o.prebuilt == 0 {
		cfg.Prebuilt = -1 // none
	}
	cfg.Pay = o.pay.config()
	return cfg
}

// countingDialer counts the bytes its connections carry, for the status
// page's throughput graph.
type countingDialer struct {
	d     socks.Dialer
	count func(n int)
}

func (d countingDialer) DialStream(ctx context.Context, req socks.Request) (net.Conn, error) {
	c, err := d.d.DialStream(ctx, req)
	if err != nil {
		return nil, err
	}
	return status.CountingConn(c, d.count), nil
}

// proxyServer is the SOCKS server of `obol proxy` in front of an obol
// client.
type proxyServer struct {
	srv   *socks.Server
	socks net.Listener
	http  net.Listener // nil without --http-connect
}

func newProxy(o proxyOptions, c *obol.Client, cs *node.ClientStatus, log *slog.Logger) (*proxyServer, error) {
	dialer := countingDialer{c, cs.CountBytes}
	srv, err := socks.NewServer(socks.Config{Dialer: dialer, Logger: log, DisableHTTPConnect: o.httpConnect == "",
		DisableOptimisticData: o.noOptimistic})
	if err != nil {
		return nil, err
	}
	p := &proxyServer{srv: srv}
	if p.socks, err = net.Listen("tcp", o.socks); err != nil {
		return nil, fmt.Errorf("listen for SOCKS: %w", err)
	}
	if o.httpConnect != "" {
		if p.http, err = net.Listen("tcp", o.httpConnect); err != nil {
			p.socks.Close()
			return nil, fmt.Errorf("listen for HTTP CONNECT: %w", err)
		}
	}
	return p, nil
}

func (p *proxyServer) close() {
	p.socks.Close()
	if p.http != nil {
		p.http.Close()
	}
}

// run serves until ctx ends (SIGINT, SIGTERM) and returns once the
// servers have stopped.
func (p *proxyServer) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	serve := func(ln net.Listener) {
		if err := p.srv.Serve(ctx, ln); err != nil {
			errs <- err
			cancel()
		}
	}
	wg.Go(func() { serve(p.socks) })
	if p.http != nil {
		wg.Go(func() { serve(p.http) })
	}
	wg.Wait()
	close(errs)
	return <-errs
}
