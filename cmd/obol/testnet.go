package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/internal/localnet"
)

type testnetOptions struct {
	relays  int
	check   bool
	free    bool
	timeout time.Duration
	log     logFlags
}

func testnetFlags(args []string, w io.Writer) (testnetOptions, int, bool) {
	o := testnetOptions{relays: 8, timeout: 2 * time.Minute}
	fs := newFlagSet("testnet", "[--relays N] [--check]", w)
	fs.Var(intValue{&o.relays, 2, localnet.MaxRelays}, "relays", "start `N` relays (every third one from the second on is an exit)")
	fs.BoolVar(&o.check, "check", false, "check that a client discovers every relay, print a line per check and exit (0 if all pass)")
	fs.BoolVar(&o.free, "free", false, "run free relays, without a mint or payments")
	fs.Var(durationValue{&o.timeout, time.Second, time.Hour}, "timeout", "give up booting and discovering after this `duration`")
	o.log.register(fs, slog.LevelWarn)
	code, ok := parse(fs, args)
	return o, code, ok
}

// runTestnet is `obol testnet`.
func runTestnet(ctx context.Context, args []string, e env) int {
	o, code, ok := testnetFlags(args, e.stderr)
	if !ok {
		return code
	}
	t := &testnet{opts: o, e: e, log: o.log.logger(e.stderr)}
	return t.run(ctx)
}

// testnet is one run of `obol testnet`.
type testnet struct {
	opts testnetOptions
	e    env
	log  *slog.Logger
	mint *testMint // nil with --free
	// mintHS offers the mint as a hidden service too (nil with --free,
	// or if it did not start: then a check fails)
	mintHS    *mintService
	mintHSErr error

	mu        sync.Mutex // serialises output; guards the counters
	joined    int
	published int
}

// progress prints a boot event and counts it.
func (t *testnet) progress(ev localnet.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ev.Kind {
	case localnet.Joined:
		t.joined++
	case localnet.Published:
		t.published++
	}
	fmt.Fprintln(t.e.stdout, ev)
}

func (t *testnet) counts() (joined, published int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.joined, t.published
}

func (t *testnet) run(ctx context.Context) int {
	cfg := localnet.Config{Relays: t.opts.relays, Logger: t.log, Progress: t.progress}
	mintURL := ""
	if !t.opts.free {
		var err error
		if t.mint, err = startTestMint(); err != nil {
			fmt.Fprintf(t.e.stderr, "obol testnet: mint: %v\n", err)
			return exitFail
		}
		defer t.mint.close() // last: relays settle with it as they stop
		mintURL = t.mint.url
		cfg.Payment = testnetPayment(mintURL)
		fmt.Fprintf(t.e.stdout, "started a test mint at %s\n", mintURL)
		if !cfg.MintThroughCircuits() {
			fmt.Fprintf(t.e.stdout, "with %d relays a relay has no circuit to the mint without itself: relays settle over direct connections\n", t.opts.relays)
		}
	}
	fmt.Fprintf(t.e.stdout, "starting %d relays on loopback\n", t.opts.relays)
	bootCtx, cancel := context.WithTimeout(ctx, t.opts.timeout)
	defer cancel()
	start := time.Now()
	net, err := localnet.Start(bootCtx, cfg)
	if err != nil && ctx.Err() != nil && !t.opts.check {
		fmt.Fprintf(t.e.stdout, "stopping\n") // interrupted while booting
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(t.e.stderr, "obol testnet: %v\n", err)
		if t.opts.check {
			return t.report(checkResults{boot: t.bootChecks()})
		}
		return exitFail
	}
	defer net.Close()
	fmt.Fprintf(t.e.stdout, "all %d relays published in %v\n", t.opts.relays, time.Since(start).Round(time.Millisecond))
	res := t.discover(bootCtx, net)
	if res.err != nil && !t.opts.check {
		return exitFail
	}
	fmt.Fprintf(t.e.stdout, "starting a proxy, a demo web server and a demo hidden service\n")
	var mintHS sync.WaitGroup
	if t.mint != nil {
		// The mint is also offered as a hidden service: clients and
		// relays can reach it through circuits that end at the mint.
		mintHS.Go(func() { t.mintHS, t.mintHSErr = t.startMintService(bootCtx, net) })
	}
	svc, err := t.startServices(bootCtx, net, mintURL)
	mintHS.Wait()
	if t.mintHS != nil {
		defer t.mintHS.stop()
		fmt.Fprintf(t.e.stdout, "the mint is also a hidden service at %s\n", t.mintHS.url)
	} else if t.mintHSErr != nil {
		fmt.Fprintf(t.e.stderr, "obol testnet: the mint as a hidden service: %v\n", t.mintHSErr)
	}
	if err != nil {
		fmt.Fprintf(t.e.stderr, "obol testnet: %v\n", err)
		res.services = []check{{"the proxy and the hidden service started", false, err.Error()}}
		if t.opts.check {
			return t.report(res)
		}
		return exitFail
	}
	defer svc.close()
	if t.opts.check {
		// The checks bound each fetch themselves (serviceChecks); they
		// do not share the boot's deadline.
		res.services = t.serviceChecks(ctx, svc)
		if t.mint != nil {
			// Settling gets time of its own: a slow boot must not leave
			// it without time to reach the mint, and a loaded machine
			// settles every channel, only later.
			sctx, cancel := context.WithTimeout(ctx, settleTimeout)
			defer cancel()
			s := t.settle(sctx, net, svc)
			s.print(t)
			res.services = append(res.services, s.check())
		}
		return t.report(res)
	}
	t.printBox(net, svc)
	t.wait(ctx)
	if t.mint != nil {
		sctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		defer cancel()
		t.settle(sctx, net, svc).print(t)
	}
	return exitOK
}

// startMintService offers the testnet's mint as a hidden service on
// net, with a fresh address.
func (t *testnet) startMintService(ctx context.Context, net *localnet.Network) (*mintService, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return startMintService(ctx, strings.TrimPrefix(t.mint.url, "http://"), mintServiceOptions{
		bootstrap: []peer.AddrInfo{net.Relays[0].AddrInfo()}, key: key, allowSameSubnet: true, timeout: t.opts.timeout,
		sample: len(net.Relays),
		log:    t.log.With("part", "mint hidden service")})
}

// settleTimeout bounds the settlement at the end of a run.
const settleTimeout = 5 * time.Minute

// wait keeps the network up until ctx ends.
func (t *testnet) wait(ctx context.Context) {
	<-ctx.Done()
	fmt.Fprintf(t.e.stdout, "stopping\n")
}
