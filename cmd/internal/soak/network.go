package soak

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/obolnet/obol/internal/localnet"
	"github.com/obolnet/obol/payment/mint"
)

// How long the soak waits for a process to come up, publish or stop.
const (
	startWithin   = 60 * time.Second
	publishWithin = 2 * time.Minute
	stopWithin    = 2 * time.Minute
)

// relay is one relay's data directory and its runs of the obol binary.
type relay struct {
	name string
	dir  string
	exit bool
	boot bool   // a bootstrap relay: never churned
	addr string // /ip4/…/p2p/… others join through (bootstrap relays)
	p    *proc  // the current or last run
	runs []*proc
	// abandoned: killed without settling and not started again, or
	// stopped at the end without reaching the mint; the soak starts it
	// once more at the end so that it settles.
	abandoned bool
}

// client is one proxy with its wallet.
type client struct {
	name   string
	dir    string
	wallet string
	socks  string
	p      *proc
}

// network is the soak's mint, relays and clients. The relays slice only
// grows (a fresh relay has a directory of its own); mu guards it and each
// relay's fields while churn runs.
type network struct {
	cfg  Config
	dir  string
	mint *testMint
	boot []string // bootstrap addresses

	mu     sync.Mutex
	relays []*relay

	clients []*client
}

// testMint is the soak's mint: one with a fake Lightning backend on
// loopback, in process, or one elsewhere (srv nil).
type testMint struct {
	srv *mint.TestServer
	url string
}

func startMint(dir string) (*testMint, error) {
	seed := make([]byte, 32)
	rand.Read(seed)
	s, err := mint.Start(mint.Config{Seed: seed, Dir: dir, Name: "obol soak mint"}, mint.ServerConfig{})
	if err != nil {
		return nil, err
	}
	return &testMint{srv: s, url: s.URL}, nil
}

func (tm *testMint) close() { tm.srv.Close() }

func (n *network) logLevel() string {
	if n.cfg.ChildLogLevel == "" {
		return "info"
	}
	return n.cfg.ChildLogLevel
}

// newRelay adds a relay with a fresh data directory; it does not start it.
func (n *network) newRelay(exit bool) *relay {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := len(n.relays)
	r := &relay{name: fmt.Sprintf("relay%d", i), dir: filepath.Join(n.dir, fmt.Sprintf("relay%d", i)), exit: exit,
		boot: i < n.cfg.Bootstrap}
	n.relays = append(n.relays, r)
	return r
}

// relayArgs are a relay's flags: paid at 1 sat per MiB and per circuit,
// channels closed seconds after their circuits end; exits reach loopback.
func (n *network) relayArgs(r *relay, boot []string) ([]string, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"relay", "--data-dir", r.dir, "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port),
		"--mint", n.mint.url, "--direct-mint-connection-unsafe", "--price-per-mib", "1sat", "--price-per-circuit", "1sat", "--settle-after", "2s",
		"--lifetime", "10m", "--republish", "2m", "--log-format", "json", "--log-level", n.logLevel()}
	if r.exit {
		args = append(args, "--roles", "guard,exit", "--exit-policy", "accept *:*", "--allow-loopback")
	} else {
		args = append(args, "--roles", "guard")
	}
	if len(boot) > 0 {
		args = append(args, "--bootstrap", strings.Join(boot, ","))
	}
	return args, nil
}

// start runs r (again, on its data directory) and waits for its peer ID.
func (n *network) start(ctx context.Context, r *relay, boot []string) error {
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return err
	}
	args, err := n.relayArgs(r, boot)
	if err != nil {
		return err
	}
	p, err := startProc(n.cfg.Binary, filepath.Join(n.dir, r.name+".log"), args...)
	if err != nil {
		return err
	}
	n.mu.Lock()
	r.p, r.runs, r.abandoned = p, append(r.runs, p), false
	n.mu.Unlock()
	if _, err := p.waitOut(ctx, "peer ID:", startWithin); err != nil {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	return nil
}

// startRelays starts the bootstrap relays one by one, each joining
// through those before it, then the others through all of them, and
// waits until every relay has published its descriptor.
func (n *network) startRelays(ctx context.Context) error {
	exits := 0
	for i := range n.cfg.Relays {
		// A third are exits, spread over the network (the first is one).
		exit := exits*3 <= i
		if exit {
			exits++
		}
		r := n.newRelay(exit)
		if err := n.start(ctx, r, n.boot); err != nil {
			return err
		}
		if r.boot {
			rest, err := r.p.waitOut(ctx, "  /ip4/", startWithin)
			if err != nil {
				return err
			}
			r.addr = "/ip4/" + rest
			n.boot = append(n.boot, r.addr)
		}
	}
	for _, r := range n.relays {
		if err := r.p.waitLog(ctx, msgPublished, publishWithin); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	return nil
}

// startClients funds each client's wallet at the mint and starts its
// proxy.
func (n *network) startClients(ctx context.Context) error {
	for i := range n.cfg.Clients {
		c := &client{name: fmt.Sprintf("client%d", i), dir: filepath.Join(n.dir, fmt.Sprintf("client%d", i))}
		c.wallet = filepath.Join(c.dir, "wallet")
		if err := localnet.FundWallet(ctx, c.wallet, n.mint.url, n.cfg.Funds); err != nil {
			return fmt.Errorf("funding %s: %w", c.name, err)
		}
		p, err := startProc(n.cfg.Binary, filepath.Join(n.dir, c.name+".log"), "proxy",
			"--socks", "127.0.0.1:0", "--bootstrap", strings.Join(n.boot, ","), "--data-dir", filepath.Join(c.dir, "proxy"),
			"--mint", n.mint.url, "--wallet-dir", c.wallet, "--budget", "100000sat",
			"--allow-same-subnet", "--min-guard-age", "0", "--min-exit-age", "0", "--resample", "1m", "--log-format", "json", "--log-level", n.logLevel())
		if err != nil {
			return err
		}
		c.p = p
		n.clients = append(n.clients, c)
		if c.socks, err = p.waitOut(ctx, "  SOCKS5/SOCKS4a on ", publishWithin); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

// stopClients interrupts every proxy (each settles what it can) and
// waits for them.
func (n *network) stopClients() error {
	var errs []error
	for _, c := range n.clients {
		if !c.p.signal(syscall.SIGINT, stopWithin) {
			c.p.kill()
			errs = append(errs, fmt.Errorf("%s did not stop within %v of SIGINT", c.name, stopWithin))
		} else if code := c.p.exitCode(); code != 0 {
			errs = append(errs, fmt.Errorf("%s exited with %d", c.name, code))
		}
	}
	return errors.Join(errs...)
}

// stopRelays interrupts every running relay at once (each closes its
// channels at the mint as it stops) and waits for them. A relay that
// stopped without settling (the mint did not answer in time) is marked
// to be started again, as one killed is, and counted.
func (n *network) stopRelays() (unsettled int, err error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, r := range n.running() {
		wg.Go(func() {
			settled, err := stopRelay(r)
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
			if err == nil && !settled {
				unsettled++
				n.mu.Lock()
				r.abandoned = true
				n.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return unsettled, errors.Join(errs...)
}

// stopRelay interrupts r and reports whether it settled its channels.
func stopRelay(r *relay) (bool, error) {
	if !r.p.signal(syscall.SIGINT, stopWithin) {
		r.p.kill()
		return false, fmt.Errorf("%s did not stop within %v of SIGINT", r.name, stopWithin)
	}
	if code := r.p.exitCode(); code != 0 {
		return false, fmt.Errorf("%s exited with %d", r.name, code)
	}
	return r.p.log.seen(msgSettled), nil
}

// revive starts every abandoned relay once more, alone, and stops it
// with SIGINT so that it settles the channels its ledger holds.
func (n *network) revive(ctx context.Context) (int, error) {
	var errs []error
	revived := 0
	for _, r := range n.snapshot() {
		if !r.abandoned {
			continue
		}
		revived++
		if err := n.start(ctx, r, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		settled, err := stopRelay(r)
		if err == nil && !settled {
			err = fmt.Errorf("%s stopped without settling its channels, again", r.name)
		}
		errs = append(errs, err)
	}
	return revived, errors.Join(errs...)
}

// running lists the relays that run now.
func (n *network) running() []*relay {
	var rs []*relay
	for _, r := range n.snapshot() {
		if p := n.proc(r); p != nil && p.running() {
			rs = append(rs, r)
		}
	}
	return rs
}

// proc is r's current process; the churner replaces it under n.mu.
func (n *network) proc(r *relay) *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return r.p
}

func (n *network) snapshot() []*relay {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*relay(nil), n.relays...)
}

// sampleMemory reads the peak resident set of every running process.
func (n *network) sampleMemory() {
	for _, r := range n.running() {
		n.proc(r).sampleHWM()
	}
	for _, c := range n.clients {
		c.p.sampleHWM()
	}
}

// killAll ends every process still running, at once (on errors).
func (n *network) killAll() {
	for _, r := range n.running() {
		n.proc(r).kill()
	}
	for _, c := range n.clients {
		if c.p != nil && c.p.running() {
			c.p.kill()
		}
	}
}
