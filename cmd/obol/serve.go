package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/internal/status"
	"github.com/obolnet/obol/payment/wallet"
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
	pay     payFlags
	log     logFlags
	obs     observeFlags
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
	fs.Var(intValue{&o.sample, 10, maxSample}, "sample", "how many relays to sample from the DHT, a `count`")
	fs.Var(durationValue{&o.timeout, time.Second, time.Hour}, "timeout", "give up joining the DHT after this `duration`")
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
	o.client.Logger = log
	c, err := node.OpenClient(o.client)
	if err != nil {
		log.Error("client did not start", "err", err)
		return exitFail
	}
	defer c.Close()
	jctx, cancel := context.WithTimeout(ctx, o.timeout)
	_, err = sample(jctx, c, o.sample, log)
	cancel()
	if err != nil && len(c.Known()) == 0 {
		log.Error("cannot join the network", "err", err)
		return exitFail
	}
	key, err := hidden.LoadKey(filepath.Join(o.client.DataDir, serviceKeyFile))
	if err != nil {
		log.Error("service key", "err", err)
		return exitFail
	}
	pay, err := o.pay.open(ctx, o.timeout, log)
	if err != nil {
		log.Error("hidden service did not start", "err", err)
		return exitFail
	}
	hn := hidden.Network{Links: links(c, log), Directory: client.DirectoryFunc(c.Known), Logger: log,
		GuardFile: filepath.Join(o.client.DataDir, hsGuardFile)}
	defer hn.Links.Close()
	cs := node.NewClientStatus(status.KindServe, node.ViewOf(c, hn.Links), nil, errs)
	if pay != nil {
		defer pay.Close()
		hn.Pay = pay.Pay
		cs.SetPayments(node.PayerPayments{P: pay})
	}
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Network: hn, Key: key})
	if err != nil {
		log.Error("hidden service did not start", "err", err)
		return exitFail
	}
	defer l.Close()
	fmt.Fprintf(e.stdout, "obol hidden service up\n  address %s (port %d → %s)\n  try: curl --socks5-hostname 127.0.0.1:9050 http://%s:%d/\n",
		l.Address(), o.port, o.target, l.Address(), o.port)
	var w *wallet.Wallet
	if pay != nil {
		w = pay.Wallet()
	}
	o.pay.print(e.stdout, w)
	obs, err := o.obs.open(cs, e.stdout, log)
	if err != nil {
		log.Error("hidden service did not start", "err", err)
		return exitFail
	}
	serve := func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() { cancel(); wg.Wait() }() // settling stops before pay.Close
		if pay != nil {
			wg.Go(func() { pay.Run(ctx) })
		}
		wg.Go(func() { c.KeepFresh(ctx, o.sample, serveResample, o.timeout) })
		return hidden.Forward(ctx, l, map[uint16]string{uint16(o.port): o.target})
	}
	if err := obs.run(ctx, serve); err != nil && ctx.Err() == nil {
		log.Error("hidden service stopped", "err", err)
		return exitFail
	}
	return exitOK
}
