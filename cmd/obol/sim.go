package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/obolnet/obol/sim"
)

type simOptions struct {
	cfg      sim.Config
	out      string
	plots    string
	realtime bool
}

func simFlags(args []string, e env) (simOptions, int, bool) {
	o := simOptions{cfg: sim.Config{Relays: 100, Clients: 100, Observe: time.Hour, Seed: 1, Sample: 200, Fetches: 3, ViewProbes: 1}}
	c := &o.cfg
	fs := newFlagSet("sim", "[--relays N] [--clients M] [flags]", e.stderr)
	fs.Var(intValue{&c.Relays, 4, 20000}, "relays", "relays at the start, a `count`")
	fs.Var(intValue{&c.Clients, 1, 20000}, "clients", "clients, a `count`")
	fs.Var(durationValue{&c.Observe, time.Minute, 7 * 24 * time.Hour}, "observe", "simulated `duration` discovery is observed for")
	fs.StringVar(&c.Discovery, "discovery", sim.DiscoveryView, "how clients learn the relays: `view` (relays gossip and serve their views, as obol does) or sample (each client samples the DHT, the earlier design)")
	fs.Var(intValue{&c.Sample, 10, 10000}, "sample", "clients' sample size with --discovery sample, a `count`")
	fs.Var(intValue{&c.Fetches, 1, 1000}, "fetches", "fetches per client, each on a new circuit, a `count`")
	fs.Var(intValue{&c.ViewProbes, 1, 1000}, "probes", "new clients that measure the time to a complete view, a `count`")
	fs.Float64Var(&c.SybilFraction, "sybil", 0, "`fraction` of relays that are Sybils claiming huge bandwidth")
	fs.Float64Var(&c.WithholdFraction, "withhold", 0, "`fraction` of DHT servers that store and serve no record")
	fs.Float64Var(&c.LeaveRate, "leave", 0, "relays that leave, per relay-hour (a `rate`)")
	fs.Float64Var(&c.CrashRate, "crash", 0, "relays that crash, per relay-hour (a `rate`)")
	fs.Float64Var(&c.JoinRate, "join", 0, "new relays per starting relay-hour (a `rate`)")
	fs.DurationVar(&c.SybilDelay, "sybil-delay", 0, "the Sybils join this `duration` into the observation (0: with the honest relays)")
	fs.DurationVar(&c.MinGuardAge, "min-guard-age", 0, "clients' guard age, a `duration` (0: waived, as on a local test network)")
	fs.DurationVar(&c.MinExitAge, "min-exit-age", 0, "clients' exit age, a `duration` (0: waived, as on a local test network)")
	fs.Var(intValue{&c.RelayConns, 0, 1 << 20}, "relay-conns", "relays' connection manager high watermark, a `count` (0: obol relay's, 2048; the low one is half)")
	fs.Uint64Var(&c.Seed, "seed", 1, "`seed` of placement, bandwidths and churn")
	fs.StringVar(&o.out, "out", "", "write the report as JSON to this `file`")
	fs.StringVar(&o.plots, "plots", "", "write PNG plots into this `directory`")
	fs.BoolVar(&o.realtime, "realtime", false, "run in this process on the wall clock instead of in virtual time")
	if code, ok := parse(fs, args); !ok {
		return o, code, false
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintf(e.stderr, "obol sim: %v\n", err)
		return o, exitUsage, false
	}
	return o, 0, true
}

// runSim is `obol sim`: a network of real obol relays and clients on
// simulated links. Virtual time needs testing/synctest, which runs only
// inside a test, so by default the command runs the sim package's
// TestScale through the Go toolchain, from the module's source (the
// current directory or a parent of it). With --realtime it runs the same
// simulation in this process on the wall clock: an observed hour then
// takes an hour, and a loaded machine's delays count as the network's.
func runSim(ctx context.Context, args []string, e env) int {
	o, code, ok := simFlags(args, e)
	if !ok {
		return code
	}
	if o.realtime {
		return simRealtime(ctx, o, e)
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintf(e.stderr, "obol sim: %v (run it from obol's source, or use --realtime)\n", err)
		return exitFail
	}
	c := o.cfg
	targs := []string{"test", "-v", "-run", "^TestScale$", "-count", "1", "-timeout", "0", "./sim", "-args",
		"-sim.relays", strconv.Itoa(c.Relays), "-sim.clients", strconv.Itoa(c.Clients),
		"-sim.observe", c.Observe.String(), "-sim.discovery", c.Discovery, "-sim.sample", strconv.Itoa(c.Sample),
		"-sim.fetches", strconv.Itoa(c.Fetches), "-sim.probes", strconv.Itoa(c.ViewProbes),
		"-sim.sybil", ftoa(c.SybilFraction), "-sim.withhold", ftoa(c.WithholdFraction),
		"-sim.leave", ftoa(c.LeaveRate), "-sim.crash", ftoa(c.CrashRate), "-sim.join", ftoa(c.JoinRate),
		"-sim.seed", strconv.FormatUint(c.Seed, 10), "-sim.sybil-delay", c.SybilDelay.String(),
		"-sim.min-guard-age", c.MinGuardAge.String(), "-sim.min-exit-age", c.MinExitAge.String(),
		"-sim.relay-conns", strconv.Itoa(c.RelayConns)}
	for flag, path := range map[string]string{"-sim.out": o.out, "-sim.plots": o.plots} {
		if path != "" {
			abs, err := filepath.Abs(path)
			if err != nil {
				fmt.Fprintf(e.stderr, "obol sim: %v\n", err)
				return exitFail
			}
			targs = append(targs, flag, abs)
		}
	}
	cmd := exec.CommandContext(ctx, "go", targs...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, e.stdout, e.stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(e.stderr, "obol sim: %v\n", err)
		return exitFail
	}
	return exitOK
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// moduleRoot finds obol's source: the directory, at or above the current
// one, that holds the module's go.mod and the sim package.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "sim", "sim_test.go")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("obol's source is not here")
		}
		dir = parent
	}
}

// simRealtime runs the simulation in-process on the wall clock.
func simRealtime(ctx context.Context, o simOptions, e env) int {
	start := time.Now()
	rep, err := sim.Run(ctx, o.cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "obol sim: %v\n", err)
		return exitFail
	}
	rep.WallSeconds = time.Since(start).Seconds()
	rep.Print(e.stdout)
	if o.out != "" {
		if err := rep.WriteJSON(o.out); err != nil {
			fmt.Fprintf(e.stderr, "obol sim: %v\n", err)
			return exitFail
		}
	}
	if o.plots != "" {
		if err := rep.Plot(o.plots); err != nil {
			fmt.Fprintf(e.stderr, "obol sim: %v\n", err)
			return exitFail
		}
	}
	return exitOK
}
