// Package soak runs a paid obol network of relay and proxy processes on
// loopback for a long while, under web-like and bulk traffic and relay
// churn, and reports what the clients saw and where the money went.
//
// The relays and the proxies are runs of the obol binary; the mint and
// the web server run in the soak's own process.
package soak

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/obolnet/obol/cmd/internal/bench"
)

// Config is one soak run.
type Config struct {
	// Binary is the obol binary the relays and proxies run (required).
	Binary string
	// Relays is how many relays run at any time; the first Bootstrap of
	// them are the ones every other joins through, and are never churned.
	Relays, Bootstrap int
	Clients           int
	Duration          time.Duration // of traffic
	// Churn is how often a relay is stopped and one started in its place;
	// 0 churns nothing.
	Churn   time.Duration
	Traffic Traffic
	Funds   uint64 // sat given to each client's wallet
	// Dir holds every data directory and log; "" makes a temporary one,
	// removed at the end.
	Dir    string
	Logger *slog.Logger // progress; nil: none
	// ChildLogLevel is the relays' and proxies' --log-level (default info).
	ChildLogLevel string
	// MintURL is a mint to use instead of starting one in process (a
	// test built with the race detector runs `obol mint` instead: the
	// mint's signatures are slow under it).
	MintURL string
}

// Defaults are the full soak: 100 relays, 4 clients, 30 minutes, a relay
// churned every 30 seconds.
func Defaults() Config {
	return Config{Relays: 100, Bootstrap: 3, Clients: 4, Duration: 30 * time.Minute, Churn: 30 * time.Second,
		Traffic: Traffic{WebUsers: 4, BulkUsers: 1, Think: 2 * time.Second,
			WebMin: 1 << 10, WebMax: 200 << 10, BulkMin: 5 << 20, BulkMax: 50 << 20,
			WebTimeout: time.Minute, BulkTimeout: 5 * time.Minute},
		Funds: 1_000_000}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	t := c.Traffic
	switch {
	case c.Binary == "":
		return errors.New("soak: no obol binary")
	case c.Bootstrap < 1 || c.Relays < c.Bootstrap+3:
		return fmt.Errorf("soak: %d relays with %d bootstrap relays: need at least 3 more than those", c.Relays, c.Bootstrap)
	case c.Clients < 1:
		return errors.New("soak: at least one client")
	case c.Duration <= 0 || c.Churn < 0:
		return errors.New("soak: the duration must be positive and the churn interval not negative")
	case t.WebUsers < 0 || t.BulkUsers < 0 || t.WebUsers+t.BulkUsers == 0:
		return errors.New("soak: at least one user per client")
	case t.WebMin < 1 || t.WebMax < t.WebMin || t.BulkMin < 1 || t.BulkMax < t.BulkMin:
		return errors.New("soak: request sizes must be positive ranges")
	case t.Think <= 0 || t.WebTimeout <= 0 || t.BulkTimeout <= 0:
		return errors.New("soak: think time and timeouts must be positive")
	case c.Funds == 0:
		return errors.New("soak: the clients need funds")
	}
	return nil
}

// Run starts the network, runs the traffic and the churn for
// cfg.Duration, stops everything, settles and reports. The report is
// returned with an error when the run could not finish.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "obol-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	began := time.Now()
	mint := &testMint{url: cfg.MintURL}
	if cfg.MintURL == "" {
		m, err := startMint("")
		if err != nil {
			return nil, err
		}
		defer m.close()
		mint = m
	}
	n := &network{cfg: cfg, dir: dir, mint: mint}
	defer n.killAll()
	rep := &Report{Date: began.UTC(), Hardware: bench.ReadHardware(), Settings: cfg.settings(), Dir: dir}
	err := n.soak(ctx, log, rep)
	rep.Elapsed = time.Since(began).Seconds()
	return rep, err
}

// soak is Run once the mint is up.
func (n *network) soak(ctx context.Context, log *slog.Logger, rep *Report) error {
	cfg := n.cfg
	log.Info("starting relays", "relays", cfg.Relays, "mint", n.mint.url, "dir", n.dir)
	if err := n.startRelays(ctx); err != nil {
		return fmt.Errorf("starting relays: %w", err)
	}
	log.Info("relays published; starting clients", "clients", cfg.Clients)
	if err := n.startClients(ctx); err != nil {
		return fmt.Errorf("starting clients: %w", err)
	}
	web, stopWeb, err := startWeb(ctx)
	if err != nil {
		return err
	}
	defer stopWeb()

	log.Info("traffic", "duration", cfg.Duration, "churn", cfg.Churn)
	rec := &recorder{}
	ch := &churner{n: n, log: log}
	tctx, stopSide := context.WithCancel(ctx)
	var side sync.WaitGroup
	if cfg.Churn > 0 {
		side.Go(func() { ch.run(ctx, tctx, cfg.Churn) })
	}
	side.Go(func() { n.watch(tctx, log, rec) })
	start := time.Now()
	runTraffic(ctx, cfg.Traffic, n.clients, web, start.Add(cfg.Duration), rec)
	trafficTime := time.Since(start)
	stopSide()
	side.Wait()
	n.sampleMemory()
	rep.summarize(rec.all(), ch.all(), trafficTime)
	if err := ctx.Err(); err != nil {
		return err
	}

	log.Info("stopping clients")
	errC := n.stopClients()
	log.Info("stopping relays", "err", errC)
	unsettled, errR := n.stopRelays()
	rep.Settlement.UnsettledAtStop = unsettled
	log.Info("relays stopped", "without_settling", unsettled, "err", errR)
	err = errors.Join(errC, errR)
	rep.memory(n)
	rep.settle(ctx, n, log)
	return err
}

// watch logs progress every minute and samples the processes' memory.
func (n *network) watch(ctx context.Context, log *slog.Logger, rec *recorder) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.sampleMemory()
		if i%6 == 0 {
			reqs := rec.all()
			ok := 0
			for _, r := range reqs {
				if r.ok() {
					ok++
				}
			}
			log.Info("progress", "requests", len(reqs), "ok", ok, "relays_running", len(n.running()))
		}
	}
}

// settle counts the relays' channels as they stopped, starts the
// abandoned relays once more so they settle, then settles the clients'
// channels and counts the money.
func (rep *Report) settle(ctx context.Context, n *network, log *slog.Logger) {
	s := &rep.Settlement
	s.GivenSat = uint64(n.cfg.Clients) * n.cfg.Funds
	var errs []error
	if err := n.countRelays(ctx, s); err != nil {
		errs = append(errs, err)
	}
	s.AtStop = s.Settled
	revived, err := n.revive(ctx)
	s.Revived = revived
	log.Info("revived abandoned relays to settle", "relays", revived, "err", err)
	errs = append(errs, err)
	errs = append(errs, n.countRelays(ctx, s))
	log.Info("settling the clients' channels")
	// A client settles its channels one by one: minutes for thousands.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	errs = append(errs, n.settleClients(sctx, s))
	if err := errors.Join(errs...); err != nil {
		s.Err = err.Error()
	}
}
