package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseCurl(t *testing.T) {
	for _, c := range []struct {
		out     string
		size    int
		want    curlResult
		wantErr bool
	}{
		{"0.110500 0.120000 1024 200", 1024, curlResult{ttfb: 110500 * time.Microsecond, total: 120 * time.Millisecond, bytes: 1024}, false},
		{"0.1 0.2 1000 200", 1024, curlResult{}, true}, // short answer
		{"0.1 0.2 1024 502", 1024, curlResult{}, true}, // not OK
		{"0.1 0.2 1024", 1024, curlResult{}, true},
		{"x 0.2 1024 200", 1024, curlResult{}, true},
		{"", 1024, curlResult{}, true},
	} {
		got, err := parseCurl(c.out, c.size)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("parseCurl(%q) = %+v, %v; want %+v, error %v", c.out, got, err, c.want, c.wantErr)
		}
	}
	r := curlResult{ttfb: time.Second, total: 3 * time.Second, bytes: 4e6}
	if got := r.rateMBps(); got != 2 {
		t.Errorf("rate %v MB/s, want 2 (first byte to last)", got)
	}
}

func sampleNetnsReport() *NetnsReport {
	cfg := NetnsFromConfig(Defaults(), "obol")
	return &NetnsReport{Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Hardware: Hardware{CPU: "Test CPU", Cores: 2},
		Settings: cfg.settings(), RelaysKnown: 8,
		TTFB: []Series{newSeries(NetnsFresh, false, []float64{120}), newSeries(NetnsExisting, false, []float64{110}),
			newSeries(NetnsDirect, true, []float64{163})},
		Bulk: []Throughput{{Name: NetnsBulk, Streams: 1, Rounds: []float64{10}, MBps: 10},
			{Name: NetnsBulkTCP, Baseline: true, Streams: 1, Rounds: []float64{40}, MBps: 40}},
		Memory:  &NetnsMemory{ProxyPeakMiB: 40, PathRelayMedianMiB: 45, RelayMedianMiB: 44},
		Elapsed: time.Minute}
}

// TestNetnsDocSection checks that a namespace run writes only its own
// section of the document, in place, and that a loopback run's document
// keeps it.
func TestNetnsDocSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	r := sampleNetnsReport()
	if err := os.WriteFile(path, []byte("# Performance\n\nloopback figures\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteDocSection(path); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	doc := string(first)
	for _, want := range []string{"# Performance\n\nloopback figures\n\n" + netnsDocBegin, "obol bench --netns --doc",
		NetnsFresh, "| 110.0 |", "25% of direct TCP", "proxy 40.0 MiB", netnsDocEnd + "\n"} {
		if !strings.Contains(doc, want) {
			t.Errorf("document lacks %q:\n%s", want, doc)
		}
	}
	r.TTFB[1].Median = 99
	if err := r.WriteDocSection(path); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if strings.Count(string(second), netnsDocBegin) != 1 || !strings.Contains(string(second), "| 99.0 |") ||
		!strings.HasPrefix(string(second), "# Performance\n\nloopback figures\n\n") {
		t.Errorf("the section was not replaced in place:\n%s", second)
	}
	if err := sampleReport().WriteDoc(path); err != nil {
		t.Fatal(err)
	}
	third, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(third), netnsSection(string(second))) || strings.Contains(string(third), "loopback figures") {
		t.Errorf("a loopback run's document did not keep the namespace section at its end:\n%s", third)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil || !strings.Contains(table.String(), "circuit / direct TCP") {
		t.Errorf("table (%v):\n%s", err, table.String())
	}
}
