package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/obolnet/obol/cmd/internal/bench"
)

type benchOptions struct {
	cfg        bench.Config
	out, doc   string
	quiet      bool
	relayChild bool
	netns      bool
	relays     int
}

func benchFlags(args []string, w io.Writer) (benchOptions, int, bool) {
	o := benchOptions{cfg: bench.Defaults(), relays: 8}
	for _, a := range args { // --quick changes the defaults the other flags override
		if a == "--quick" || a == "-quick" || a == "--quick=true" || a == "-quick=true" {
			o.cfg = bench.QuickDefaults()
		}
	}
	c := &o.cfg
	fs := newFlagSet("bench", "[--quick] [--netns] [--delay D] [--out DIR] [--doc FILE] [flags]", w)
	fs.Bool("quick", false, "a short run (well under a minute): fewer samples, smaller transfers")
	fs.Var(durationValue{&c.Link.Delay, 0, time.Second}, "delay", "one-way `delay` of every emulated link (0: plain loopback)")
	fs.Var(lossValue{&c.Link.Loss}, "loss", "drop each packet on every link with this `probability` (0 to 0.5)")
	fs.Var(rateValue{&c.Link.Bandwidth}, "bandwidth", "limit every link to `RATE` bytes per second and direction (e.g. 12MiB; 0: none)")
	fs.Var(intValue{&c.Hops, 1, 8}, "hops", "`N` hops per path for first byte, bulk and payments")
	fs.Var(intValue{&c.TTFBSamples, 1, 10000}, "samples", "`N` first-byte samples per scenario")
	fs.Var(bytesIntValue{&c.BulkBytes}, "bulk", "each bulk stream fetches `SIZE` bytes (e.g. 32MiB)")
	fs.Var(intValue{&c.BulkRounds, 1, 100}, "rounds", "`N` rounds of each bulk scenario")
	fs.Var(intValue{&c.Parallel, 1, 64}, "parallel", "`N` circuits in the parallel bulk scenario")
	fs.Var(intValue{&c.BuildSamples, 1, 10000}, "builds", "build `N` circuits per hop count")
	fs.Var(intValue{&c.MemCircuits, 1, 100000}, "circuits", "open `N` idle circuits to measure a relay's memory")
	fs.BoolVar(&o.netns, "netns", false, "run relays and a proxy as processes, each node in a network namespace of its own linked by TUN devices with --delay per link, and measure with curl through SOCKS (root, Linux)")
	fs.Var(intValue{&o.relays, 2, 64}, "relays", "with --netns, run `N` relay processes")
	fs.StringVar(&o.out, "out", "", "write bench.json and PNG plots (with --netns: bench-netns.json) into `DIR`")
	fs.StringVar(&o.doc, "doc", "", "write the figures as a Markdown `file` (e.g. docs/performance.md)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.BoolVar(&o.relayChild, "relay-child", false, "internal: run as the relay process a bench measures")
	code, ok := parse(fs, args)
	if ok && o.netns && (o.cfg.Link.Loss > 0 || o.cfg.Link.Bandwidth > 0) {
		fmt.Fprintln(w, "obol bench: --netns emulates delay only: --loss and --bandwidth are for the loopback run")
		return o, exitUsage, false
	}
	return o, code, ok
}

// runBench is `obol bench`.
func runBench(ctx context.Context, args []string, e env) int {
	o, code, ok := benchFlags(args, e.stderr)
	if !ok {
		return code
	}
	if o.relayChild {
		if err := bench.RelayChild(os.Stdin, e.stdout); err != nil {
			fmt.Fprintln(e.stderr, "obol bench:", err)
			return exitFail
		}
		return exitOK
	}
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			fmt.Fprintln(e.stderr, "obol bench:", err)
			return exitFail
		}
	}
	o.cfg.Now = e.now
	o.cfg.Child = relayChildCommand
	var bar *progressBar
	if !o.quiet {
		bar = &progressBar{w: e.stderr}
		o.cfg.Progress = bar.update
	}
	if o.netns {
		return runBenchNetns(ctx, o, bar, e)
	}
	rep, err := bench.Run(ctx, o.cfg)
	bar.finish()
	if ctx.Err() != nil {
		fmt.Fprintln(e.stderr, "obol bench: interrupted")
		return exitFail
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "obol bench:", err)
		return exitFail
	}
	if err := writeBench(rep, o, e); err != nil {
		fmt.Fprintln(e.stderr, "obol bench:", err)
		return exitFail
	}
	return exitOK
}

// writeBench prints the table and writes the files asked for.
func writeBench(rep *bench.Report, o benchOptions, e env) error {
	if err := rep.WriteTable(e.stdout); err != nil {
		return err
	}
	if o.out != "" {
		p, err := rep.WriteJSON(o.out)
		if err != nil {
			return err
		}
		plots, err := rep.WritePlots(o.out)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s\n", strings.Join(append([]string{p}, plots...), ", "))
	}
	if o.doc != "" {
		if err := rep.WriteDoc(o.doc); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s\n", o.doc)
	}
	return nil
}

// runBenchNetns is `obol bench --netns`.
func runBenchNetns(ctx context.Context, o benchOptions, bar *progressBar, e env) int {
	// This very binary, even if its file has been replaced since it
	// started: the relays and the proxy must run the code measured.
	exe := fmt.Sprintf("/proc/%d/exe", os.Getpid())
	cfg := bench.NetnsFromConfig(o.cfg, exe)
	cfg.Relays = o.relays
	rep, err := bench.RunNetns(ctx, cfg)
	bar.finish()
	if ctx.Err() != nil {
		fmt.Fprintln(e.stderr, "obol bench: interrupted")
		return exitFail
	}
	if err == nil {
		err = writeBenchNetns(rep, o, e)
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "obol bench:", err)
		return exitFail
	}
	return exitOK
}

// writeBenchNetns prints the namespace run's table and writes the files
// asked for.
func writeBenchNetns(rep *bench.NetnsReport, o benchOptions, e env) error {
	if err := rep.WriteTable(e.stdout); err != nil {
		return err
	}
	if o.out != "" {
		p, err := rep.WriteJSON(o.out)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s\n", p)
	}
	if o.doc != "" {
		if err := rep.WriteDocSection(o.doc); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote its section of %s\n", o.doc)
	}
	return nil
}

// relayChildCommand runs this executable as a bench's relay process.
func relayChildCommand() *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.Command(exe, "bench", "--relay-child")
}

// progressBar draws a run's progress on one line, redrawn in place.
type progressBar struct {
	w    io.Writer
	mu   sync.Mutex
	last string
}

const barWidth = 30

func (p *progressBar) update(done, total int, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	filled := barWidth * done / max(total, 1)
	line := fmt.Sprintf("[%s%s] %3d%% %s", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled),
		100*done/max(total, 1), what)
	if len(line) > 100 {
		line = line[:100]
	}
	if line != p.last {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.last = line
	}
}

func (p *progressBar) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// lossValue is a probability in [0, 0.5].
type lossValue struct{ p *float64 }

func (v lossValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v lossValue) Set(s string) error {
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(p) || p < 0 || p > 0.5 {
		return fmt.Errorf("want a probability from 0 to 0.5, such as 0.01")
	}
	*v.p = p
	return nil
}

// rateValue is bytes per second, as bytesValue but 0 allowed.
type rateValue struct{ n *int64 }

func (v rateValue) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.FormatInt(*v.n, 10)
}

func (v rateValue) Set(s string) error {
	if s == "0" {
		*v.n = 0
		return nil
	}
	var n uint64
	if err := (bytesValue{&n}).Set(strings.TrimSuffix(s, "/s")); err != nil {
		return err
	}
	*v.n = int64(n)
	return nil
}

// bytesIntValue is bytesValue into an int, at most 4 GiB.
type bytesIntValue struct{ n *int }

func (v bytesIntValue) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.Itoa(*v.n)
}

func (v bytesIntValue) Set(s string) error {
	var n uint64
	if err := (bytesValue{&n}).Set(s); err != nil {
		return err
	}
	if n > 4<<30 {
		return fmt.Errorf("want at most 4GiB")
	}
	*v.n = int(n)
	return nil
}
