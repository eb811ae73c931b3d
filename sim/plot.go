package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/obolnet/obol/internal/pngplot"
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
	for name, c := range map[string]*pngplot.Chart{PlotViews: r.plotViews(), PlotLatency: r.plotLatency()} {
		if err := c.WritePNG(filepath.Join(dir, name), 720, 450); err != nil {
			return fmt.Errorf("sim: plot %s: %w", name, err)
		}
	}
	return nil
}

func (r *Report) plotViews() *pngplot.Chart {
	c := pngplot.NewChart(fmt.Sprintf("Clients' views (%d relays, %d clients, sample %d)", r.Config.Relays, r.Config.Clients, r.Config.Sample))
	c.XLabel = "minutes observed"
	c.YMin, c.YMax = 0, 1.05
	c.LegendLeft, c.LegendBottom = true, true
	lines := []struct {
		name string
		y    func(ViewSnapshot) float64
	}{
		{"completeness (mean)", func(v ViewSnapshot) float64 { return v.Completeness }},
		{"completeness (least)", func(v ViewSnapshot) float64 { return v.CompletenessMin }},
		{"agreement (Jaccard)", func(v ViewSnapshot) float64 { return v.Agreement }},
		{"stale share", func(v ViewSnapshot) float64 { return v.Stale }},
	}
	for _, l := range lines {
		pts := make([][2]float64, len(r.Views))
		for j, v := range r.Views {
			pts[j] = [2]float64{v.AtMinutes, l.y(v)}
		}
		c.Lines = append(c.Lines, pngplot.Line{Name: l.name, XY: pts})
	}
	return c
}

func (r *Report) plotLatency() *pngplot.Chart {
	c := pngplot.NewChart("Lookup, circuit and fetch times")
	c.XLabel = "seconds (virtual)"
	c.YLabel = "fraction"
	c.YMin, c.YMax = 0, 1
	c.LegendBottom = true
	series := []struct {
		name string
		ds   []time.Duration
	}{{"DHT lookup", r.samples.lookups}, {"circuit + stream", r.samples.dials}, {"fetch", r.samples.fetches}}
	for _, s := range series {
		if len(s.ds) == 0 {
			continue
		}
		c.Lines = append(c.Lines, pngplot.Line{Name: s.name, XY: cdf(s.ds)})
	}
	return c
}

// cdf is the empirical distribution of ds, in seconds.
func cdf(ds []time.Duration) [][2]float64 {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = d.Seconds()
	}
	return pngplot.CDF(xs)
}
