// Package pngplot draws the few charts obol's reports need — lines,
// step CDFs and grouped bars — as PNG images, with the standard library's
// image packages and a bitmap font. gonum/plot, which drew them before,
// put 8 MB of code and fonts into every obol binary and parsed its fonts
// when the program started: every relay and proxy held 3.5–4 MiB more
// resident memory for charts it never drew.
package pngplot

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Line is one series of points, drawn in order.
type Line struct {
	Name   string
	XY     [][2]float64
	Points bool // mark each point too
}

// Bars is one bar per category, in the order of Chart.Categories.
type Bars struct {
	Name   string
	Values []float64
}

// CDF is the empirical distribution of xs as a step line, for Line.XY.
func CDF(xs []float64) [][2]float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	pts := make([][2]float64, 0, 2*len(s))
	for i, x := range s {
		pts = append(pts, [2]float64{x, float64(i) / float64(len(s))}, [2]float64{x, float64(i+1) / float64(len(s))})
	}
	return pts
}

// Chart is a line chart (Lines) or a grouped bar chart (Bars and
// Categories). Axis bounds left NaN are taken from the data.
type Chart struct {
	Title          string // lines separated by \n
	XLabel, YLabel string
	XMin, XMax     float64
	YMin, YMax     float64
	Lines          []Line
	Bars           []Bars
	Categories     []string
	LegendLeft     bool // the legend on the left, not the right
	LegendBottom   bool // the legend at the bottom, not the top
}

// NewChart returns a chart whose bounds come from its data.
func NewChart(title string) *Chart {
	nan := math.NaN()
	return &Chart{Title: title, XMin: nan, XMax: nan, YMin: nan, YMax: nan}
}

// Palette is the series' colours, in order.
var Palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
}

// dashes are the lines' on/off patterns in pixels, in order (nil: solid).
var dashes = [][2]float64{{0, 0}, {8, 4}, {3, 3}, {12, 4}}

var (
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
	black = color.RGBA{0, 0, 0, 0xff}
	grid  = color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	face  = basicfont.Face7x13
)

const (
	charW, lineH = 7, 15
	ticks        = 5
)

// WritePNG draws the chart at w × h pixels into the file at path.
func (c *Chart) WritePNG(path string, w, h int) error {
	img, err := c.Draw(w, h)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Draw renders the chart.
func (c *Chart) Draw(w, h int) (*image.RGBA, error) {
	if w < 200 || h < 150 {
		return nil, fmt.Errorf("pngplot: %d × %d pixels is too small", w, h)
	}
	if len(c.Bars) > 0 && len(c.Categories) == 0 {
		return nil, fmt.Errorf("pngplot: bars without categories")
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)

	title := strings.Split(c.Title, "\n")
	for i := range title {
		title[i] = clean(title[i])
	}
	xlabel, ylabel := clean(c.XLabel), clean(c.YLabel)
	top := 8 + lineH*len(title) + lineH // the y label sits above the axis
	for i, t := range title {
		text(img, (w-width(t))/2, 8+lineH*(i+1)-3, t, black)
	}
	xmin, xmax, ymin, ymax := c.bounds()
	yt := niceTicks(ymin, ymax)
	left := 12 + charW*maxLen(yt)
	bottom := h - 10 - 2*lineH
	right := w - 14
	area := image.Rect(left, top, right, bottom)
	text(img, 4, top-4, ylabel, black)
	text(img, (left+right-width(xlabel))/2, h-8, xlabel, black)

	px := func(x float64) float64 { return float64(area.Min.X) + (x-xmin)/(xmax-xmin)*float64(area.Dx()) }
	py := func(y float64) float64 { return float64(area.Max.Y) - (y-ymin)/(ymax-ymin)*float64(area.Dy()) }

	for _, t := range yt {
		y := int(math.Round(py(t.v)))
		hline(img, area.Min.X, area.Max.X, y, grid)
		text(img, left-6-width(t.s), y+4, t.s, black)
	}
	if len(c.Bars) == 0 {
		for _, t := range niceTicks(xmin, xmax) {
			x := int(math.Round(px(t.v)))
			vline(img, x, area.Min.Y, area.Max.Y, grid)
			text(img, x-width(t.s)/2, area.Max.Y+lineH, t.s, black)
		}
	}

	frame(img, area, black) // under the series: a line at a bound stays seen
	var legend []legendEntry
	if len(c.Bars) > 0 {
		n := len(c.Categories)
		slot := float64(area.Dx()) / float64(n)
		bw := slot * 0.6 / float64(len(c.Bars))
		for g, name := range c.Categories {
			mid := float64(area.Min.X) + slot*(float64(g)+0.5)
			name = clean(name)
			text(img, int(mid)-width(name)/2, area.Max.Y+lineH, name, black)
			for i, b := range c.Bars {
				if g >= len(b.Values) || !finite(b.Values[g]) {
					continue
				}
				x0 := mid - bw*float64(len(c.Bars))/2 + bw*float64(i)
				r := image.Rect(int(x0), int(py(b.Values[g])), int(x0+bw)-1, area.Max.Y)
				draw.Draw(img, r.Intersect(area), image.NewUniform(Palette[i%len(Palette)]), image.Point{}, draw.Src)
			}
		}
		for i, b := range c.Bars {
			legend = append(legend, legendEntry{b.Name, i, true})
		}
	}
	for i, l := range c.Lines {
		col := Palette[i%len(Palette)]
		d := dashes[i%len(dashes)]
		var run float64 // length drawn along the line, for its dashes
		for j := 1; j < len(l.XY); j++ {
			a, b := l.XY[j-1], l.XY[j]
			if !finite(a[0]) || !finite(a[1]) || !finite(b[0]) || !finite(b[1]) {
				continue
			}
			run = segment(img, area, px(a[0]), py(a[1]), px(b[0]), py(b[1]), run, d, col)
		}
		if l.Points {
			for _, p := range l.XY {
				if finite(p[0]) && finite(p[1]) {
					dot(img, area, int(px(p[0])), int(py(p[1])), 3, col)
				}
			}
		}
		legend = append(legend, legendEntry{l.Name, i, false})
	}
	c.drawLegend(img, area, legend)
	return img, nil
}

type legendEntry struct {
	name string
	i    int
	bar  bool
}

func (c *Chart) drawLegend(img *image.RGBA, area image.Rectangle, entries []legendEntry) {
	if len(entries) == 0 {
		return
	}
	wide := 0
	for i := range entries {
		entries[i].name = clean(entries[i].name)
		wide = max(wide, len(entries[i].name))
	}
	bw, bh := 34+charW*wide, 6+lineH*len(entries)
	x := area.Max.X - bw - 6
	if c.LegendLeft {
		x = area.Min.X + 6
	}
	y := area.Min.Y + 6
	if c.LegendBottom {
		y = area.Max.Y - 6 - bh
	}
	box := image.Rect(x, y, x+bw, y+bh)
	draw.Draw(img, box, image.NewUniform(white), image.Point{}, draw.Src)
	frame(img, box, grid)
	for k, e := range entries {
		y := box.Min.Y + 3 + lineH*k + lineH/2
		col := Palette[e.i%len(Palette)]
		if e.bar {
			draw.Draw(img, image.Rect(x+6, y-4, x+26, y+4), image.NewUniform(col), image.Point{}, draw.Src)
		} else {
			segment(img, box, float64(x+4), float64(y), float64(x+28), float64(y), 0, dashes[e.i%len(dashes)], col)
		}
		text(img, x+32, y+4, e.name, black)
	}
}

// bounds are the axes' ranges: the chart's, or the data's with a margin.
func (c *Chart) bounds() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax, ymin, ymax = math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, l := range c.Lines {
		for _, p := range l.XY {
			if finite(p[0]) && finite(p[1]) {
				xmin, xmax = min(xmin, p[0]), max(xmax, p[0])
				ymin, ymax = min(ymin, p[1]), max(ymax, p[1])
			}
		}
	}
	for _, b := range c.Bars {
		for _, v := range b.Values {
			if finite(v) {
				ymin, ymax = min(ymin, 0, v), max(ymax, v)
			}
		}
	}
	if len(c.Bars) > 0 {
		xmin, xmax = 0, 1
	}
	if xmin > xmax { // no data
		xmin, xmax, ymin, ymax = 0, 1, 0, 1
	}
	if !math.IsNaN(c.XMin) {
		xmin = c.XMin
	}
	if !math.IsNaN(c.XMax) {
		xmax = c.XMax
	}
	if !math.IsNaN(c.YMin) {
		ymin = c.YMin
	}
	if !math.IsNaN(c.YMax) {
		ymax = c.YMax
	} else if ymax > ymin {
		ymax += 0.05 * (ymax - ymin)
	}
	if !(xmax > xmin) {
		xmax = xmin + 1
	}
	if !(ymax > ymin) {
		ymax = ymin + 1
	}
	return
}

type tick struct {
	v float64
	s string
}

// niceTicks are about `ticks` round values within [lo, hi].
func niceTicks(lo, hi float64) []tick {
	raw := (hi - lo) / ticks
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; raw <= step {
			break
		}
	}
	prec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	if step/math.Pow(10, math.Floor(math.Log10(step))) == 2.5 {
		prec++
	}
	var out []tick
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		out = append(out, tick{v, strconv.FormatFloat(v, 'f', prec, 64)})
	}
	return out
}

func maxLen(ts []tick) int {
	n := 0
	for _, t := range ts {
		n = max(n, len(t.s))
	}
	return n
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func text(img *image.RGBA, x, y int, s string, col color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(col), Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// width is s's width in pixels, as clean spells it.
func width(s string) int { return charW * len(s) }

// clean spells s in the bitmap font's ASCII: the characters reports use
// beyond it by their usual stand-ins, any other as "?".
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, ascii.Replace(s))
}

var ascii = strings.NewReplacer("×", "x", "–", "-", "—", "-", "→", "->", "µ", "u", "≤", "<=", "≥", ">=", "’", "'", "²", "^2")

func hline(img *image.RGBA, x0, x1, y int, col color.RGBA) {
	for x := x0; x <= x1; x++ {
		img.SetRGBA(x, y, col)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, col color.RGBA) {
	for y := y0; y <= y1; y++ {
		img.SetRGBA(x, y, col)
	}
}

func frame(img *image.RGBA, r image.Rectangle, col color.RGBA) {
	hline(img, r.Min.X, r.Max.X, r.Min.Y, col)
	hline(img, r.Min.X, r.Max.X, r.Max.Y, col)
	vline(img, r.Min.X, r.Min.Y, r.Max.Y, col)
	vline(img, r.Max.X, r.Min.Y, r.Max.Y, col)
}

// dot fills a square of side 2r-1 centred on (x, y), clipped to clip.
func dot(img *image.RGBA, clip image.Rectangle, x, y, r int, col color.RGBA) {
	for dy := -r + 1; dy < r; dy++ {
		for dx := -r + 1; dx < r; dx++ {
			if p := image.Pt(x+dx, y+dy); p.In(clip.Inset(-1)) {
				img.SetRGBA(p.X, p.Y, col)
			}
		}
	}
}

// segment draws a 2-pixel line from (x0, y0) to (x1, y1), clipped to
// clip, with the dash pattern d (on, off; zero: solid) continued from run
// pixels already drawn. It returns the run at the segment's end.
func segment(img *image.RGBA, clip image.Rectangle, x0, y0, x1, y1, run float64, d [2]float64, col color.RGBA) float64 {
	length := math.Hypot(x1-x0, y1-y0)
	steps := max(1, int(math.Ceil(length*2)))
	for k := 0; k <= steps; k++ {
		t := float64(k) / float64(steps)
		at := run + t*length
		if d[0] > 0 && math.Mod(at, d[0]+d[1]) >= d[0] {
			continue
		}
		x, y := int(math.Round(x0+t*(x1-x0))), int(math.Round(y0+t*(y1-y0)))
		for _, p := range [4]image.Point{{x, y}, {x + 1, y}, {x, y + 1}, {x + 1, y + 1}} {
			if p.In(clip.Inset(-1)) {
				img.SetRGBA(p.X, p.Y, col)
			}
		}
	}
	return run + length
}
