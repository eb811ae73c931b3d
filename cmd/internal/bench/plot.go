package bench

import (
	"fmt"
	"path/filepath"

	"github.com/obolnet/obol/internal/pngplot"
)

// Plot file names, in the --out directory.
const (
	PlotTTFB  = "ttfb-cdf.png"
	PlotBulk  = "bulk.png"
	PlotBuild = "build.png"
)

// WritePlots draws the report's PNG plots into dir and returns their paths:
// CDFs of time to first byte, throughput bars, build time by hop count.
func (r *Report) WritePlots(dir string) ([]string, error) {
	draw := []struct {
		name string
		c    *pngplot.Chart
	}{{PlotTTFB, r.plotTTFB()}, {PlotBulk, r.plotBulk()}, {PlotBuild, r.plotBuild()}}
	var paths []string
	for _, d := range draw {
		path := filepath.Join(dir, d.name)
		if err := d.c.WritePNG(path, 720, 450); err != nil {
			return paths, fmt.Errorf("bench: plot %s: %w", d.name, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func (r *Report) plotTTFB() *pngplot.Chart {
	c := pngplot.NewChart(fmt.Sprintf("Time to first byte (%s, %d hops)", r.Settings.Link, r.Settings.Hops))
	c.XLabel = "ms"
	c.YLabel = "fraction of requests"
	c.YMin, c.YMax = 0, 1
	c.LegendBottom = true
	c.XMin = 0
	var hi float64
	for _, s := range r.TTFB {
		hi = max(hi, quantile(s.Samples, 1))
	}
	if hi > 0 {
		c.XMax = 1.7 * hi // room for the legend on the right
	}
	for _, s := range r.TTFB {
		c.Lines = append(c.Lines, pngplot.Line{Name: s.Name, XY: pngplot.CDF(s.Samples)})
	}
	return c
}

// plotBulk draws one bar per scenario, grouped by streams. Direct TCP on
// loopback is faster by orders of magnitude; it is named in the title
// rather than drawn, so that the bars that matter stay readable.
func (r *Report) plotBulk() *pngplot.Chart {
	groups := []int{1, r.Settings.Parallel}
	c := pngplot.NewChart(fmt.Sprintf("Bulk throughput (%s, %d hops)", r.Settings.Link, r.Settings.Hops))
	if d1, dn := r.bulk(bulkName(BulkDirect, groups[0])), r.bulk(bulkName(BulkDirect, groups[1])); d1 != nil && dn != nil {
		c.Title += fmt.Sprintf("\ndirect TCP, not drawn: %.0f and %.0f MB/s", d1.MBps, dn.MBps)
	}
	c.YLabel = "MB/s"
	var hi float64
	for _, base := range []string{BulkChain, BulkCircuit} {
		vals := make([]float64, len(groups))
		for g, n := range groups {
			if t := r.bulk(bulkName(base, n)); t != nil {
				vals[g] = t.MBps
				hi = max(hi, t.MBps)
			}
		}
		c.Bars = append(c.Bars, pngplot.Bars{Name: base, Values: vals})
	}
	if hi > 0 {
		c.YMin, c.YMax = 0, 1.3*hi // room for the legend above the bars
	}
	c.Categories = []string{fmt.Sprintf("×%d", groups[0]), fmt.Sprintf("×%d", groups[1])}
	return c
}

func (r *Report) plotBuild() *pngplot.Chart {
	c := pngplot.NewChart(fmt.Sprintf("Circuit build time (%s)", r.Settings.Link))
	c.XLabel = "hops"
	c.YLabel = "ms"
	c.LegendLeft = true
	var med, p90, rtt [][2]float64
	for _, b := range r.Build {
		med = append(med, [2]float64{float64(b.Hops), b.Median})
		p90 = append(p90, [2]float64{float64(b.Hops), b.P90})
		rtt = append(rtt, [2]float64{float64(b.Hops), b.PathRTTms})
	}
	c.Lines = []pngplot.Line{{Name: "median", XY: med, Points: true}, {Name: "p90", XY: p90, Points: true},
		{Name: "path RTT (emulated)", XY: rtt, Points: true}}
	return c
}
