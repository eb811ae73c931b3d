package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/cmd/internal/bench"
	"github.com/obolnet/obol/router"
)

// TestBenchQuick runs `obol bench --quick` as a process and checks that
// its JSON holds every scenario with sane figures, that the plots are
// PNG files and that the document names the hardware. It asserts no
// wall-clock figure.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole benchmark")
	}
	dir := t.TempDir()
	doc := filepath.Join(dir, "performance.md")
	// The binary as shipped: the race detector would only slow the
	// relay processes the bench measures (this test asserts no figure).
	p := &process{cmd: exec.Command(buildObol(t), "bench", "--quick", "--out", dir, "--doc", doc)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() })
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("obol bench --quick still running after 5 minutes; stderr:\n%s", p.err.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, p.err.String())
	}
	if !strings.Contains(p.err.String(), "] 100% ") {
		t.Errorf("no progress bar reaching 100%% on stderr:\n%s", p.err.String())
	}
	for _, want := range []string{"TIME TO FIRST BYTE", "BULK THROUGHPUT", "CIRCUIT BUILD", "RELAY RESOURCES", "TARGETS"} {
		if !strings.Contains(p.out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, p.out.String())
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	checkReport(t, &r, bench.QuickDefaults())
	for _, name := range []string{bench.PlotTTFB, bench.PlotBulk, bench.PlotBuild} {
		png, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s is not a PNG file (%v)", name, err)
		}
	}
	md, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Performance", r.Hardware.CPU, "## Targets", "## Bulk throughput"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("document lacks %q", want)
		}
	}
}

// checkReport checks that r has every scenario of a run with cfg and
// that each figure is a positive finite number.
func checkReport(t *testing.T, r *bench.Report, cfg bench.Config) {
	t.Helper()
	sane := func(what string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a positive finite number", what, v)
		}
	}
	if r.Hardware.Cores < 1 || r.Date.IsZero() || !r.Settings.Quick {
		t.Errorf("hardware %+v, date %v, settings %+v", r.Hardware, r.Date, r.Settings)
	}
	sane("path RTT", r.PathRTTms)
	ttfb := map[string]bool{}
	for _, s := range r.TTFB {
		ttfb[s.Name] = true
		want := cfg.TTFBSamples
		if strings.HasPrefix(s.Name, "hidden") {
			want = cfg.HiddenSamples()
		}
		if len(s.Samples) != want {
			t.Errorf("first byte %q: %d samples, want %d", s.Name, len(s.Samples), want)
		}
		for _, x := range s.Samples {
			sane("first byte "+s.Name, x)
		}
		if s.Median > s.P90 {
			t.Errorf("first byte %q: median %v above p90 %v", s.Name, s.Median, s.P90)
		}
	}
	for _, name := range []string{bench.TTFBDirect, bench.TTFBChain, bench.TTFBBuildDial, bench.TTFBBuildThen, bench.TTFBPrebuilt,
		bench.TTFBHiddenCold, bench.TTFBHiddenWarm} {
		if !ttfb[name] {
			t.Errorf("no first-byte scenario %q", name)
		}
	}
	bulk := map[string]bool{}
	for _, x := range r.Bulk {
		bulk[x.Name] = true
		sane("bulk "+x.Name, x.MBps)
	}
	for _, base := range []string{bench.BulkDirect, bench.BulkChain, bench.BulkCircuit} {
		for _, n := range []string{" ×1", " ×8"} {
			if !bulk[base+n] {
				t.Errorf("no bulk scenario %q", base+n)
			}
		}
	}
	if len(r.Build) != cfg.MaxHops {
		t.Errorf("%d build lengths, want %d", len(r.Build), cfg.MaxHops)
	}
	for i, bt := range r.Build {
		if bt.Hops != i+1 {
			t.Errorf("build entry %d is for %d hops", i, bt.Hops)
		}
		sane("build median", bt.Median)
	}
	if len(r.CPU) != 2 {
		t.Errorf("%d CPU figures, want relay and plain chain", len(r.CPU))
	}
	for _, c := range r.CPU {
		sane("CPU "+c.Name, c.SecPerGiB)
	}
	if m := r.Memory; m == nil || m.Circuits != cfg.MemCircuits {
		t.Errorf("memory %+v, want %d circuits", m, cfg.MemCircuits)
	} else {
		sane("heap per circuit", m.HeapPerCircuit)
	}
	if f := r.Flood; f == nil {
		t.Error("no flood figures")
	} else {
		// Each attacker peer has one channel to the relay: the relay
		// keeps at most its per-channel cap of them, and the rest are
		// refused, not dropped silently.
		if f.Accepted == 0 || f.RelayCircuits > f.Peers*router.DefaultMaxCircuitsPerChannel ||
			f.Accepted > f.Peers*router.DefaultMaxCircuitsPerChannel {
			t.Errorf("flood: kept %d, relay holds %d, want at most %d per peer", f.Accepted, f.RelayCircuits, router.DefaultMaxCircuitsPerChannel)
		}
		if f.Peers*f.Attempts > f.Peers*router.DefaultMaxCircuitsPerChannel && f.RefusedCircuits+f.RefusedCreates == 0 {
			t.Errorf("flood past the cap, and the relay counted no refusal: %+v", f)
		}
		if f.HonestBuilt == 0 {
			t.Errorf("flood: no honest circuit was built: %+v", f)
		}
		sane("flood peak RSS", f.PeakRSSMiB)
	}
	if p := r.Payment; p == nil || !p.Measured {
		t.Errorf("payment %+v, want measured", p)
	} else {
		sane("paid MB/s", p.PaidMBps)
		sane("unpaid MB/s", p.UnpaidMBps)
		sane("paid first byte", p.PaidTTFB)
		sane("unpaid first byte", p.UnpaidTTFB)
		sane("payment share", p.PaymentShare)
	}
	if r.Hidden == nil || !r.Hidden.Measured {
		t.Errorf("hidden %+v, want measured", r.Hidden)
	} else {
		sane("hidden joined RTT", r.Hidden.JoinedRTTms)
	}
	if len(r.Targets) != 3 {
		t.Errorf("%d targets, want 3: %+v", len(r.Targets), r.Targets)
	}
	for _, tg := range r.Targets {
		if !tg.Applies {
			t.Errorf("target %q does not apply to the default link", tg.Name)
		}
	}
}

// TestBenchFlags checks that bad values are refused before anything runs.
func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--delay", "-1ms"}, {"--loss", "0.9"}, {"--loss", "x"}, {"--hops", "9"},
		{"--bandwidth", "fast"}, {"--bulk", "0"}, {"extra"},
		{"--netns", "--loss", "0.01"}, {"--netns", "--bandwidth", "1MiB"}, {"--netns", "--relays", "1"},
	} {
		code, _, stderr := runCmd(context.Background(), append([]string{"bench"}, args...)...)
		if code != exitUsage {
			t.Errorf("bench %v: exit %d, want %d; stderr:\n%s", args, code, exitUsage, stderr)
		}
	}
}
