package pngplot

import (
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// count is how many pixels of img have exactly colour i of the palette.
func count(img image.Image, i int) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			p := Palette[i]
			if uint8(r>>8) == p.R && uint8(g>>8) == p.G && uint8(bl>>8) == p.B {
				n++
			}
		}
	}
	return n
}

// Every series is drawn, in its own colour, and the file is a PNG of the
// size asked for.
func TestLinesAndBars(t *testing.T) {
	lines := NewChart("two lines\nand a second title line")
	lines.XLabel, lines.YLabel = "x", "y"
	lines.Lines = []Line{
		{Name: "rising", XY: [][2]float64{{0, 0}, {1, 1}, {2, 4}}, Points: true},
		{Name: "flat", XY: [][2]float64{{0, 2}, {2, 2}}},
	}
	bars := NewChart("bars")
	bars.Bars = []Bars{{Name: "a", Values: []float64{3, 5}}, {Name: "b", Values: []float64{4, 1}}}
	bars.Categories = []string{"×1", "×8"}
	dir := t.TempDir()
	for name, c := range map[string]*Chart{"lines.png": lines, "bars.png": bars} {
		path := filepath.Join(dir, name)
		if err := c.WritePNG(path, 640, 400); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if img.Bounds().Dx() != 640 || img.Bounds().Dy() != 400 {
			t.Fatalf("%s: %v", name, img.Bounds())
		}
		for i := range 2 {
			// A dashed line across the chart is hundreds of pixels; a
			// legend swatch alone some tens.
			if n := count(img, i); n < 150 {
				t.Errorf("%s: series %d has %d pixels of its colour", name, i, n)
			}
		}
		if n := count(img, 2); n != 0 {
			t.Errorf("%s: %d pixels of a third series' colour", name, n)
		}
	}
}

// Charts with no data, one point, a flat line or values that are not
// finite draw without failing.
func TestDegenerateData(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for name, c := range map[string]*Chart{
		"empty":    NewChart(""),
		"point":    {XMin: nan, XMax: nan, YMin: nan, YMax: nan, Lines: []Line{{XY: [][2]float64{{1, 1}}, Points: true}}},
		"flat":     {XMin: nan, XMax: nan, YMin: nan, YMax: nan, Lines: []Line{{XY: [][2]float64{{0, 3}, {5, 3}}}}},
		"infinite": {XMin: nan, XMax: nan, YMin: nan, YMax: nan, Lines: []Line{{XY: [][2]float64{{0, inf}, {nan, 1}, {2, 2}, {3, 1}}}}},
		"bars nan": {XMin: nan, XMax: nan, YMin: nan, YMax: nan, Bars: []Bars{{Values: []float64{nan}}}, Categories: []string{"a", "b"}},
		"tiny":     {XMin: 0, XMax: 1e-9, YMin: -1e12, YMax: 1e12, Lines: []Line{{XY: [][2]float64{{0, 0}, {1e-9, 1e12}}}}},
	} {
		if _, err := c.Draw(400, 300); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewChart("").Draw(10, 10); err == nil {
		t.Error("a 10 × 10 chart drew")
	}
	c := NewChart("")
	c.Bars = []Bars{{Values: []float64{1}}}
	if _, err := c.Draw(400, 300); err == nil {
		t.Error("bars without categories drew")
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []string
	}{
		{0, 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0, 100, []string{"0", "20", "40", "60", "80", "100"}},
		{0, 10, []string{"0", "2", "4", "6", "8", "10"}},
		{3, 7, []string{"3", "4", "5", "6", "7"}},
		{0, 1.05, []string{"0.00", "0.25", "0.50", "0.75", "1.00"}},
	} {
		var got []string
		for _, tk := range niceTicks(tc.lo, tc.hi) {
			got = append(got, tk.s)
		}
		if len(got) != len(tc.want) {
			t.Errorf("[%g, %g]: %v, want %v", tc.lo, tc.hi, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("[%g, %g]: %v, want %v", tc.lo, tc.hi, got, tc.want)
				break
			}
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{"×8": "x8", "a → b": "a -> b", "日本": "??", "tab\there": "tab?here", "plain": "plain"} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCDF(t *testing.T) {
	got := CDF([]float64{3, 1, 2})
	want := [][2]float64{{1, 0}, {1, 1.0 / 3}, {2, 1.0 / 3}, {2, 2.0 / 3}, {3, 2.0 / 3}, {3, 1}}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range got {
		if math.Abs(got[i][0]-want[i][0]) > 1e-12 || math.Abs(got[i][1]-want[i][1]) > 1e-12 {
			t.Fatalf("%v, want %v", got, want)
		}
	}
	if len(CDF(nil)) != 0 {
		t.Fatal("points from no samples")
	}
}
