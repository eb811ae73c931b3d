package bench

import (
	"fmt"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
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
		f    func() (*plot.Plot, error)
	}{{PlotTTFB, r.plotTTFB}, {PlotBulk, r.plotBulk}, {PlotBuild, r.plotBuild}}
	var paths []string
	for _, d := range draw {
		p, err := d.f()
		if err != nil {
			return paths, fmt.Errorf("bench: plot %s: %w", d.name, err)
		}
		path := filepath.Join(dir, d.name)
		if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, path); err != nil {
			return paths, fmt.Errorf("bench: plot %s: %w", d.name, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func (r *Report) plotTTFB() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Time to first byte (%s, %d hops)", r.Settings.Link, r.Settings.Hops)
	p.X.Label.Text = "ms"
	p.Y.Label.Text = "fraction of requests"
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.YOffs = vg.Centimeter
	p.X.Min = 0
	var hi float64
	for _, s := range r.TTFB {
		hi = max(hi, quantile(s.Samples, 1))
	}
	p.X.Max = 1.7 * hi // room for the legend on the right
	for i, s := range r.TTFB {
		l, err := plotter.NewLine(cdf(s.Samples))
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.Name, l)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

// cdf is the empirical distribution of xs as a step line.
func cdf(xs []float64) plotter.XYs {
	s := slices.Clone(xs)
	slices.Sort(s)
	pts := make(plotter.XYs, 0, 2*len(s))
	for i, x := range s {
		pts = append(pts, plotter.XY{X: x, Y: float64(i) / float64(len(s))})
		pts = append(pts, plotter.XY{X: x, Y: float64(i+1) / float64(len(s))})
	}
	return pts
}

// plotBulk draws one bar per scenario, grouped by streams. Direct TCP on
// loopback is faster by orders of magnitude; it is named in the title
// rather than drawn, so that the bars that matter stay readable.
func (r *Report) plotBulk() (*plot.Plot, error) {
	p := plot.New()
	groups := []int{1, r.Settings.Parallel}
	p.Title.Text = fmt.Sprintf("Bulk throughput (%s, %d hops)", r.Settings.Link, r.Settings.Hops)
	if d1, dn := r.bulk(bulkName(BulkDirect, groups[0])), r.bulk(bulkName(BulkDirect, groups[1])); d1 != nil && dn != nil {
		p.Title.Text += fmt.Sprintf("\ndirect TCP, not drawn: %.0f and %.0f MB/s", d1.MBps, dn.MBps)
	}
	p.Y.Label.Text = "MB/s"
	bases := []string{BulkChain, BulkCircuit}
	w := vg.Points(24)
	var hi float64
	for i, base := range bases {
		vals := make(plotter.Values, len(groups))
		for g, n := range groups {
			if t := r.bulk(bulkName(base, n)); t != nil {
				vals[g] = t.MBps
				hi = max(hi, t.MBps)
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = (vg.Length(i) - 0.5) * w
		p.Add(bars)
		p.Legend.Add(base, bars)
	}
	p.Legend.Top = true
	p.Y.Min, p.Y.Max = 0, 1.3*hi // room for the legend above the bars
	p.NominalX(fmt.Sprintf("×%d", groups[0]), fmt.Sprintf("×%d", groups[1]))
	return p, nil
}

func (r *Report) plotBuild() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Circuit build time (%s)", r.Settings.Link)
	p.X.Label.Text = "hops"
	p.Y.Label.Text = "ms"
	p.Legend.Top, p.Legend.Left = true, true
	var med, p90, rtt plotter.XYs
	for _, b := range r.Build {
		med = append(med, plotter.XY{X: float64(b.Hops), Y: b.Median})
		p90 = append(p90, plotter.XY{X: float64(b.Hops), Y: b.P90})
		rtt = append(rtt, plotter.XY{X: float64(b.Hops), Y: b.PathRTTms})
	}
	for i, s := range []struct {
		name string
		xy   plotter.XYs
	}{{"median", med}, {"p90", p90}, {"path RTT (emulated)", rtt}} {
		l, pts, err := plotter.NewLinePoints(s.xy)
		if err != nil {
			return nil, err
		}
		l.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}
