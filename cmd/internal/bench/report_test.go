package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{3}, 0.9, 3},
		{[]float64{4, 1, 3, 2}, 0.5, 2},
		{[]float64{5, 1, 4, 2, 3}, 0.5, 3},
		{[]float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 0.9, 9},
		{[]float64{2, 1}, 1, 2},
	} {
		if got := quantile(c.xs, c.q); got != c.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", c.xs, c.q, got, c.want)
		}
	}
}

// sampleReport is a report as a run at the default link would give.
func sampleReport() *Report {
	cfg := QuickDefaults()
	r := &Report{Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Hardware: Hardware{CPU: "Test CPU", Cores: 2, MemoryGB: 4},
		Settings: cfg.settings(), PathRTTms: 60, Elapsed: time.Minute}
	for _, s := range []struct {
		name string
		ms   float64
	}{{TTFBDirect, 0.3}, {TTFBChain, 65}, {TTFBBuildDial, 70}, {TTFBBuildThen, 190}, {TTFBPrebuilt, 130}} {
		r.TTFB = append(r.TTFB, newSeries(s.name, s.name == TTFBDirect || s.name == TTFBChain, []float64{s.ms, s.ms + 1, s.ms + 2}))
	}
	for _, n := range []int{1, 8} {
		r.Bulk = append(r.Bulk, Throughput{Name: bulkName(BulkDirect, n), Baseline: true, Streams: n, MBps: 800},
			Throughput{Name: bulkName(BulkChain, n), Baseline: true, Streams: n, MBps: 20},
			Throughput{Name: bulkName(BulkCircuit, n), Streams: n, MBps: 9})
	}
	for h := 1; h <= 8; h++ {
		r.Build = append(r.Build, BuildTime{Hops: h, Median: 22 * float64(h), P90: 23 * float64(h), PathRTTms: 20 * float64(h)})
	}
	r.CPU = []CPUCost{{Name: CPURelay, SecPerGiB: 6}, {Name: CPUChain, Baseline: true, SecPerGiB: 4}}
	r.Memory = &Memory{Circuits: 500, RSSPerCircuit: 7000, HeapPerCircuit: 6800}
	r.Payment = &Payment{Measured: true, UnpaidMBps: 10, PaidMBps: 9.6, Ratio: 0.96}
	r.Hidden = &Hidden{Note: "not measured here"}
	r.Targets = targets(r)
	return r
}

func TestTargets(t *testing.T) {
	r := sampleReport()
	want := map[string]bool{"fresh-circuit first byte": true, "single-circuit bulk": false, "paid bulk": true}
	if len(r.Targets) != len(want) {
		t.Fatalf("targets %+v", r.Targets)
	}
	for _, tg := range r.Targets {
		if p, ok := want[tg.Name]; !ok || tg.Pass != p || !tg.Applies {
			t.Errorf("target %+v, want pass=%v and applying", tg, p)
		}
	}
	r.Settings.Link.Delay = 40 * time.Millisecond
	for _, tg := range targets(r) {
		if tg.Applies {
			t.Errorf("target %q applies at 40 ms per link", tg.Name)
		}
	}
}

func TestOutputs(t *testing.T) {
	r := sampleReport()
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Test CPU, 2 cores", "fresh circuit (BuildDial)", "circuit ×8", "8 hops", "FAIL", "PASS", "not measured here"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	dir := t.TempDir()
	p, err := r.WriteJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.TTFB) != len(r.TTFB) || back.Settings != r.Settings {
		t.Errorf("JSON does not round-trip: %v", err)
	}
	plots, err := r.WritePlots(dir)
	if err != nil || len(plots) != 3 {
		t.Fatalf("plots %v: %v", plots, err)
	}
	doc := filepath.Join(dir, "performance.md")
	if err := r.WriteDoc(doc); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(doc)
	for _, want := range []string{"`obol bench --quick --doc docs/performance.md`", "2026-01-02 03:04 UTC", "Test CPU", "| 8 | 176.00 |", "pre-built circuit answers later"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("document lacks %q", want)
		}
	}
}

func TestFlagsLine(t *testing.T) {
	r := sampleReport()
	r.Settings.Link.Delay = 40 * time.Millisecond
	r.Settings.BulkBytes = 16 << 20
	r.Settings.BulkRounds = 3
	if got, want := r.flagsLine(), " --quick --delay 40ms --bulk 16MiB --rounds 3"; got != want {
		t.Errorf("flags %q, want %q", got, want)
	}
}
