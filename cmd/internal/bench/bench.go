// Package bench measures obol on a local network it stands up in the
// process — relays with routers on loopback, exits allowed to reach a
// local HTTP server, every link optionally behind a delaying forwarder —
// side by side with baselines in the same run: direct TCP, and a plain
// forwarding chain of the same libp2p transport with the same number of
// hops. It is the machinery of "obol bench"; only cmd imports it.
//
// A run yields a Report, which it can print as a table, write as JSON,
// draw as PNG plots and write as a Markdown document.
package bench

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"time"
)

// Config is what a run measures and how much.
type Config struct {
	Link Link // every link: one-way delay, loss, bandwidth
	Hops int  // path length for first byte, bulk and payments (default 3)
	// TTFBSamples is how many times each first-byte scenario runs.
	TTFBSamples int
	// BulkBytes is what each bulk stream fetches; BulkRounds how many
	// times each bulk scenario runs; Parallel the streams (each on its
	// own circuit) of the parallel scenario.
	BulkBytes, BulkRounds, Parallel int
	// BuildSamples is how many circuits of each length 1…MaxHops are built.
	BuildSamples, MaxHops int
	// CPUBytes is what is forwarded through the relay child to measure its
	// CPU; MemCircuits the idle circuits opened through it.
	CPUBytes, MemCircuits int
	// FloodPeers attacker peers each try to open FloodAttempts circuits
	// through a relay child with the default limits.
	FloodPeers, FloodAttempts int
	// Child returns the command that runs a relay child (RelayChild on
	// its stdin and stdout). Required.
	Child func() *exec.Cmd
	// Progress, if set, is told of each step: done of total, and what.
	Progress func(done, total int, what string)
	// Quick marks the settings as the short run's, for the report.
	Quick bool
	// Now is the clock for the report's date (default time.Now).
	Now func() time.Time
}

// Defaults are the settings of a full run.
func Defaults() Config {
	return Config{Link: Link{Delay: 10 * time.Millisecond}, Hops: 3, TTFBSamples: 30,
		BulkBytes: 32 << 20, BulkRounds: 3, Parallel: 8, BuildSamples: 20, MaxHops: 8,
		CPUBytes: 256 << 20, MemCircuits: 5000, FloodPeers: 8, FloodAttempts: 2000}
}

// QuickDefaults are the settings of a run that ends in well under a minute.
func QuickDefaults() Config {
	c := Defaults()
	c.Quick = true
	c.TTFBSamples, c.BulkBytes, c.BulkRounds, c.BuildSamples = 8, 4<<20, 1, 3
	c.CPUBytes, c.MemCircuits = 32<<20, 500
	c.FloodPeers, c.FloodAttempts = 1, 1600 // just past one channel's cap
	return c
}

// Validate reports settings a run cannot use.
func (c *Config) Validate() error {
	switch {
	case c.Child == nil:
		return errors.New("bench: no relay child command")
	case c.Hops < 1 || c.Hops > 8:
		return errors.New("bench: hops must be 1 to 8")
	case c.MaxHops < 1 || c.MaxHops > 16:
		return errors.New("bench: max hops must be 1 to 16")
	case c.TTFBSamples < 1 || c.BulkRounds < 1 || c.BuildSamples < 1:
		return errors.New("bench: samples and rounds must be at least 1")
	case c.BulkBytes < 1 || c.CPUBytes < 1 || c.Parallel < 1 || c.MemCircuits < 1 || c.FloodPeers < 1 || c.FloodAttempts < 1:
		return errors.New("bench: sizes, streams and circuits must be at least 1")
	case c.Link.Delay < 0 || c.Link.Loss < 0 || c.Link.Loss >= 1 || c.Link.Bandwidth < 0:
		return errors.New("bench: delay and bandwidth must not be negative, loss must be in [0, 1)")
	}
	return nil
}

// HiddenSamples is how many times each hidden-service first byte is
// timed: fewer, since a cold one builds three circuits and fetches a
// descriptor.
func (c *Config) HiddenSamples() int { return max(c.TTFBSamples/2, 3) }

// PaymentChunk is the size of each paid and unpaid bulk transfer.
func (c *Config) PaymentChunk() int { return paymentChunk(c.BulkBytes) }

func paymentChunk(bulk int) int { return min(bulk, 2<<20) }

// PaymentPairs is how many times each of the paid and unpaid bulk
// transfers runs: as many chunks as BulkRounds of BulkBytes, and at
// least eight, since their ratio is a target.
func (c *Config) PaymentPairs() int { return max(c.BulkRounds*c.BulkBytes/c.PaymentChunk(), 8) }

// PaidTTFBSamples is how many fresh paid (and unpaid) circuits are timed:
// fewer than the other first-byte scenarios, since each funds channels.
func (c *Config) PaidTTFBSamples() int { return max(c.TTFBSamples/3, 2) }

// steps is how many progress steps a run takes with cfg.
func (c *Config) steps() int {
	n := 2 + 2*c.HiddenSamples()    // networks, hidden
	n += 5 * c.TTFBSamples          // first byte
	n += 2 * 3 * c.BulkRounds       // bulk
	n += c.BuildSamples * c.MaxHops // build
	n += 3 + c.MemCircuits/100      // relay child, CPU, memory
	n += 2                          // flood
	n += 1 + 2*c.PaymentPairs()     // payment bulk
	n += 2 * c.PaidTTFBSamples()    // payment first byte
	return n
}

// run is one run's state.
type run struct {
	cfg   Config
	rep   *Report
	srv   *server
	net   *testnet
	chain *chain
	total int

	mu   sync.Mutex // guards done; steps may come from several builders
	done int
}

func (b *run) step(what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done++
	if b.cfg.Progress != nil {
		b.cfg.Progress(min(b.done, b.total), b.total, what)
	}
}

// Run measures every scenario and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	start := time.Now()
	b := &run{cfg: cfg, total: cfg.steps(), rep: &Report{Date: cfg.Now().UTC(), Hardware: ReadHardware(),
		Settings: cfg.settings(), PathRTTms: ms(2 * time.Duration(cfg.Hops) * cfg.Link.Delay)}}
	if err := b.start(); err != nil {
		return nil, err
	}
	defer b.close()
	for _, m := range []func(context.Context) error{b.measureTTFB, b.measureBulk, b.measureBuild,
		b.measureResources, b.measureFlood, b.measurePayment, b.measureHidden} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := m(ctx); err != nil {
			return nil, err
		}
	}
	b.rep.Targets = targets(b.rep)
	b.rep.Elapsed = time.Since(start)
	return b.rep, nil
}

func (c *Config) settings() Settings {
	return Settings{Quick: c.Quick, Link: c.Link, Hops: c.Hops, TTFBSamples: c.TTFBSamples,
		BulkBytes: c.BulkBytes, BulkRounds: c.BulkRounds, Parallel: c.Parallel,
		BuildSamples: c.BuildSamples, MaxHops: c.MaxHops, CPUBytes: c.CPUBytes, MemCircuits: c.MemCircuits}
}

// start brings up the server, the relays and the plain chain, and opens
// the client's links along the measured path.
func (b *run) start() error {
	b.step("starting the network")
	var err error
	if b.srv, err = startServer(); err != nil {
		return err
	}
	if b.net, err = startNetwork(max(b.cfg.MaxHops, b.cfg.Hops, b.cfg.Parallel), b.cfg.Link, nil); err != nil {
		b.close()
		return err
	}
	if b.chain, err = startChain(b.cfg.Hops, b.cfg.Link, b.srv.addr()); err != nil {
		b.close()
		return err
	}
	if err := b.net.warm(context.Background(), b.net.FirstN(max(b.cfg.MaxHops, b.cfg.Hops))); err != nil {
		b.close()
		return err
	}
	s, err := b.chain.open(context.Background())
	if err != nil {
		b.close()
		return fmt.Errorf("bench: plain chain: %w", err)
	}
	err = fetch(s, 1)
	s.Close()
	if err != nil {
		b.close()
		return fmt.Errorf("bench: plain chain: %w", err)
	}
	return nil
}

func (b *run) close() {
	if b.chain != nil {
		b.chain.Close()
	}
	if b.net != nil {
		b.net.Close()
	}
	if b.srv != nil {
		b.srv.Close()
	}
}
