package dht_test

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
)

// BenchmarkNetwork50 boots 50 relays on loopback, publishes all, and
// measures lookup latency, Sample(10) time, and memory and goroutines per
// relay. Run: go test -run XXX -bench Network50 -benchtime 200x ./dht
func BenchmarkNetwork50(b *testing.B) {
	const relays = 50
	runtime.GC()
	rss0, heap0, g0 := rssBytes(), heapBytes(), runtime.NumGoroutine()
	start := time.Now()
	net := dhttest.NewCluster(b, relays, dhttest.Options{})
	boot := time.Since(start)
	runtime.GC()
	rss1, heap1, g1 := rssBytes(), heapBytes(), runtime.NumGoroutine()
	client := dhttest.NewClient(b, net.Bootstrap())
	ctx := context.Background()

	b.Run("Lookup", func(b *testing.B) {
		var lat []time.Duration
		i := 0
		for b.Loop() {
			r := net.Relays[i%relays]
			i++
			t0 := time.Now()
			if _, _, err := client.LookupRelay(ctx, r.ID()); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.ReportMetric(percentile(lat, 50), "p50-ms")
		b.ReportMetric(percentile(lat, 95), "p95-ms")
	})
	b.Run("LookupPlain", func(b *testing.B) { // kad-dht's lookup alone, for comparison
		var lat []time.Duration
		i, misses := 0, 0
		for b.Loop() {
			r := net.Relays[i%relays]
			i++
			t0 := time.Now()
			if _, _, err := client.LookupRelayPlain(ctx, r.ID()); err != nil {
				misses++ // without the retry LookupRelay used to make
			}
			lat = append(lat, time.Since(t0))
		}
		b.ReportMetric(percentile(lat, 50), "p50-ms")
		b.ReportMetric(percentile(lat, 95), "p95-ms")
		b.ReportMetric(float64(misses), "misses")
	})
	b.Run("Sample10Cold", func(b *testing.B) {
		for b.Loop() {
			if _, err := client.Sample(ctx, 10, dht.NewCache("", nil), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PerRelay", func(b *testing.B) {
		for b.Loop() {
		}
		b.ReportMetric(float64(rss1-rss0)/relays/(1<<20), "RSS-MiB/relay")
		b.ReportMetric(float64(heap1-heap0)/relays/(1<<20), "heap-MiB/relay")
		b.ReportMetric(float64(g1-g0)/relays, "goroutines/relay")
		b.ReportMetric(boot.Seconds(), "boot-s")
	})
}

func percentile(d []time.Duration, p int) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[(len(s)-1)*p/100].Microseconds()) / 1000
}

func heapBytes() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// rssBytes reads the process's resident set size from /proc.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
