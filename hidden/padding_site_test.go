package hidden_test

import (
	"context"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/padding"
	"github.com/obolnet/obol/hidden"
)

// The site-fingerprinting experiment (specs/12-padding.md,
// "Measurements"): exit circuits load synthetic sites — a page and its
// sub-resources, each a stream, sizes jittered by ±10 % per visit — and
// a k-NN classifier names the site from the circuit's cells on the
// client's link, without padding and with FRONT.

// site is a page and its sub-resources, in bytes.
type site []int

// siteList are the synthetic sites: pages of 3–52 KB with one to four
// sub-resources of 1–22 KB.
func siteList() []site {
	var out []site
	for i := range 8 {
		s := site{3000 + 7000*i}
		for j := range i%4 + 1 {
			s = append(s, 1000+1500*i+4000*j)
		}
		out = append(out, s)
	}
	return out
}

// testbedFront is FRONT scaled to loopback, where a site loads in tens
// of milliseconds rather than seconds: windows of 10–60 ms, at most 60
// padding cells each way.
var testbedFront = padding.FrontConfig{MaxCells: 60, MinWindow: 10 * time.Millisecond, MaxWindow: 60 * time.Millisecond}

// visit loads s over a new circuit through g, m, x, with a FRONT machine
// if front, and returns the load time.
func (e *experiment) visit(ctx context.Context, n hidden.Config, r *mrand.Rand, s site, g, m, x int, front bool) (time.Duration, error) {
	host, port, _ := net.SplitHostPort(e.server)
	p, _ := strconv.Atoi(port)
	start := time.Now()
	path := []client.Hop{e.tn.hop(g), e.tn.hop(m), e.tn.hop(x)}
	jitter := func(size int) int { return size*9/10 + r.IntN(size/5+1) }
	c, st, err := client.BuildDial(ctx, n.Links, path, host, uint16(p), nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if front {
		if err := c.Pad(ctx, 1, 0, padding.Front(r, testbedFront)); err != nil {
			return 0, err
		}
	}
	for i, size := range s {
		if i > 0 {
			if st, err = c.Dial(ctx, host, uint16(p)); err != nil {
				return 0, err
			}
		}
		fmt.Fprintf(st, "GET /%d HTTP/1.0\r\nHost: x\r\n\r\n", jitter(size))
		io.Copy(io.Discard, st)
		st.Close()
	}
	load := time.Since(start)
	// The circuit stays open for the observation window, as a browser's
	// does for minutes, so the padding after the load is seen too.
	time.Sleep(observeWindow - load)
	return load, nil
}

// observeWindow is how long a visit's circuit is observed: past the
// loads and past 3 FRONT windows of testbedFront.
const observeWindow = 250 * time.Millisecond

// siteFeatures are the usual website-fingerprinting features: counts
// per direction, the signed sizes of the first bursts, and the load's
// duration.
func siteFeatures(cells []cellEvent) []float64 {
	var in, out float64
	var bursts []float64
	for i, c := range cells {
		d := -1.0
		if c.out {
			d, out = 1, out+1
		} else {
			in++
		}
		if i == 0 || c.out != cells[i-1].out {
			bursts = append(bursts, 0)
		}
		bursts[len(bursts)-1] += d
	}
	f := []float64{in, out, float64(len(bursts)), math.Log1p(float64(cells[len(cells)-1].at / time.Microsecond))}
	for i := range 30 {
		if i < len(bursts) {
			f = append(f, bursts[i])
		} else {
			f = append(f, 0)
		}
	}
	return f
}

// knnSites is the leave-one-out accuracy of 1-NN on z-scored features.
func knnSites(xs [][]float64, ys []int) float64 {
	zscore(xs)
	right := 0
	for i := range xs {
		best, label := math.Inf(1), -1
		for j := range xs {
			if d := dist(xs[i], xs[j]); j != i && d < best {
				best, label = d, ys[j]
			}
		}
		if label == ys[i] {
			right++
		}
	}
	return float64(right) / float64(len(xs))
}

// BenchmarkSiteFingerprintPadding is the site experiment. Run with
// -benchtime 1x; PADDING_VISITS sets the visits of each site (default
// 10).
func BenchmarkSiteFingerprintPadding(b *testing.B) {
	visits := 10
	if v, err := strconv.Atoi(os.Getenv("PADDING_VISITS")); err == nil && v > 0 {
		visits = v
	}
	e := newExperiment(b)
	sites := siteList()
	r := mrand.New(mrand.NewPCG(1, 2))
	e.run(b, 3, false) // warm the relays' channels and caches
	for range b.N {
		for _, front := range []bool{false, true} {
			tr := newTracer()
			n := e.tn.tracedEndpoint(tr)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			var xs [][]float64
			var ys []int
			var cells int
			var load time.Duration
			for v := range visits {
				for i, s := range sites {
					k := v*len(sites) + i
					d, err := e.visit(ctx, n, r, s, k%6, (k+1)%6, (k+3)%6, front)
					if err != nil {
						b.Fatal(err)
					}
					load += d
					for _, sm := range e.settle(b, tr, false) {
						xs, ys = append(xs, siteFeatures(sm.cells)), append(ys, i)
						cells += len(sm.cells)
					}
				}
			}
			cancel()
			name := map[bool]string{false: "none", true: "front"}[front]
			loads := visits * len(sites)
			acc := knnSites(xs, ys)
			b.Logf("machine %-5s sites %d visits %d  1-NN accuracy %.2f (chance %.2f)  cells/load %.1f  load time %v",
				name, len(sites), visits, acc, 1/float64(len(sites)), float64(cells)/float64(loads), (load / time.Duration(loads)).Round(time.Microsecond))
			b.ReportMetric(acc, "site-acc-"+name)
			b.ReportMetric(float64(cells)/float64(loads), "cells/load-"+name)
			b.ReportMetric(float64(load.Microseconds())/1000/float64(loads), "ms/load-"+name)
		}
	}
}
