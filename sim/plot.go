package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot file names, in the plots directory.
const (
	PlotViews   = "views.png"
	PlotLatency = "latency-cdf.png"
)

// Plot writes the report's PNG plots into dir: the views over the
// observation, and the distributions of lookup, circuit and fetch times.
func (r *Report) Plot(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, f := range map[string]func() (*plot.Plot, error){PlotViews: r.plotViews, PlotLatency: r.plotLatency} {
		p, err := f()
		if err != nil {
			return fmt.Errorf("sim: plot %s: %w", name, err)
		}
		if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("sim: plot %s: %w", name, err)
		}
	}
	return nil
}

func (r *Report) plotViews() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Clients' views (%d relays, %d clients, sample %d)", r.Config.Relays, r.Config.Clients, r.Config.Sample)
	p.X.Label.Text = "minutes observed"
	p.Y.Min, p.Y.Max = 0, 1.05
	p.Legend.Top, p.Legend.Left = false, true
	lines := []struct {
		name string
		y    func(ViewSnapshot) float64
	}{
		{"completeness (mean)", func(v ViewSnapshot) float64 { return v.Completeness }},
		{"completeness (least)", func(v ViewSnapshot) float64 { return v.CompletenessMin }},
		{"agreement (Jaccard)", func(v ViewSnapshot) float64 { return v.Agreement }},
		{"stale share", func(v ViewSnapshot) float64 { return v.Stale }},
	}
	for i, l := range lines {
		pts := make(plotter.XYs, len(r.Views))
		for j, v := range r.Views {
			pts[j] = plotter.XY{X: v.AtMinutes, Y: l.y(v)}
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		line.Color, line.Dashes, line.Width = plotutil.Color(i), plotutil.Dashes(i), vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(l.name, line)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

func (r *Report) plotLatency() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Lookup, circuit and fetch times"
	p.X.Label.Text = "seconds (virtual)"
	p.Y.Label.Text = "fraction"
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top, p.Legend.Left = false, false
	series := []struct {
		name string
		ds   []time.Duration
	}{{"DHT lookup", r.samples.lookups}, {"circuit + stream", r.samples.dials}, {"fetch", r.samples.fetches}}
	for i, s := range series {
		if len(s.ds) == 0 {
			continue
		}
		line, err := plotter.NewLine(cdf(s.ds))
		if err != nil {
			return nil, err
		}
		line.Color, line.Dashes, line.Width = plotutil.Color(i), plotutil.Dashes(i), vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(s.name, line)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

// cdf is the empirical distribution of ds, in seconds, as a step line.
func cdf(ds []time.Duration) plotter.XYs {
	s := slices.Clone(ds)
	slices.Sort(s)
	pts := make(plotter.XYs, 0, 2*len(s))
	for i, d := range s {
		x := d.Seconds()
		pts = append(pts, plotter.XY{X: x, Y: float64(i) / float64(len(s))}, plotter.XY{X: x, Y: float64(i+1) / float64(len(s))})
	}
	return pts
}
