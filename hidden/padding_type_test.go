package hidden_test

import (
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// setupCells is the window of a circuit's first cells that the setup
// classifier sees: a build, a request and the start of its answer.
const setupCells = 10

// features are the usual ones of circuit fingerprinting (Kwon et al.
// 2015; Wang et al. 2014): cell counts per direction, the sequence of
// directions and link commands, bursts and timing — of the whole
// circuit (whole) or of its first setupCells cells; timing adds the
// times of the window's fifth and last cells.
func features(s sample, whole, timing bool) []float64 {
	cells := s.cells
	if !whole && len(cells) > setupCells {
		cells = cells[:setupCells]
	}
	var f []float64
	var in, out, bursts float64
	for i, c := range cells {
		if c.out {
			out++
		} else {
			in++
		}
		if i == 0 || c.out != cells[i-1].out {
			bursts++
		}
	}
	f = append(f, in, out, bursts)
	for i := range setupCells {
		dir, cmd := 0.0, 0.0
		if i < len(cells) {
			dir, cmd = -1, float64(cells[i].cmd)
			if cells[i].out {
				dir = 1
			}
		}
		f = append(f, dir, cmd)
	}
	if !timing {
		return f
	}
	last := cells[len(cells)-1].at
	f = append(f, math.Log1p(float64(last/time.Microsecond)))
	if len(cells) > 4 {
		f = append(f, math.Log1p(float64(cells[4].at/time.Microsecond)))
	} else {
		f = append(f, 0)
	}
	return f
}

// knnAccuracy is the leave-one-out accuracy of a k-nearest-neighbour
// classifier (z-scored features, Euclidean distance) on xs labelled ys,
// with the classes balanced by dropping the surplus of the larger one.
func knnAccuracy(xs [][]float64, ys []bool, k int) float64 {
	xs, ys = balance(xs, ys)
	zscore(xs)
	right := 0
	for i := range xs {
		type nb struct {
			d  float64
			hs bool
		}
		var nbs []nb
		for j := range xs {
			if j != i {
				nbs = append(nbs, nb{dist(xs[i], xs[j]), ys[j]})
			}
		}
		sort.Slice(nbs, func(a, b int) bool { return nbs[a].d < nbs[b].d })
		votes := 0
		for _, n := range nbs[:k] {
			if n.hs {
				votes++
			}
		}
		if (2*votes > k) == ys[i] {
			right++
		}
	}
	return float64(right) / float64(len(xs))
}

func balance(xs [][]float64, ys []bool) ([][]float64, []bool) {
	var nhs, nexit int
	for _, y := range ys {
		if y {
			nhs++
		} else {
			nexit++
		}
	}
	keep := min(nhs, nexit)
	var ox [][]float64
	var oy []bool
	var ch, ce int
	for i, y := range ys {
		if y && ch < keep {
			ch++
		} else if !y && ce < keep {
			ce++
		} else {
			continue
		}
		ox, oy = append(ox, append([]float64(nil), xs[i]...)), append(oy, y)
	}
	return ox, oy
}

// accuracies of the classifier on three feature sets.
type accuracies struct {
	setup       float64 // the setup window's counts, directions and commands
	setupTiming float64 // and their timing
	whole       float64 // the whole circuit's, timing included
}

// classify returns the classifier's accuracies and the cells of each
// kind.
func classify(samples []sample) (acc accuracies, exitCells, hsCells int) {
	var xs, xt, xw [][]float64
	var ys []bool
	for _, s := range samples {
		xs = append(xs, features(s, false, false))
		xt = append(xt, features(s, false, true))
		xw = append(xw, features(s, true, true))
		ys = append(ys, s.hs)
		if s.hs {
			hsCells += len(s.cells)
		} else {
			exitCells += len(s.cells)
		}
	}
	acc = accuracies{knnAccuracy(xs, ys, 5), knnAccuracy(xt, ys, 5), knnAccuracy(xw, ys, 5)}
	return acc, exitCells, hsCells
}

// BenchmarkCircuitTypePadding is the circuit-type experiment: a k-NN
// classifier tells hidden-service circuits from exit circuits by their
// cells on the client's link, without and with the setup machine. Run
// with -benchtime 1x; PADDING_ROUNDS sets the fetches of each kind
// (default 40; below 20, k = 5 leave-one-out has too few circuits of
// each kind).
func BenchmarkCircuitTypePadding(b *testing.B) {
	rounds := 40
	if v, err := strconv.Atoi(os.Getenv("PADDING_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	e := newExperiment(b)
	e.run(b, 3, false) // warm the relays' channels and caches
	for range b.N {
		for _, padded := range []bool{false, true} {
			samples, exitTime, hsTime := e.run(b, rounds, padded)
			acc, exitCells, hsCells := classify(samples)
			name := map[bool]string{false: "none", true: "hs-setup"}[padded]
			b.Logf("machine %-8s circuits %3d  accuracy: setup %.2f, setup+timing %.2f, whole circuit %.2f  cells/fetch exit %.1f hs %.1f  fetch time exit %v hs %v",
				name, len(samples), acc.setup, acc.setupTiming, acc.whole, float64(exitCells)/float64(rounds), float64(hsCells)/float64(rounds),
				exitTime.Round(time.Microsecond), hsTime.Round(time.Microsecond))
			b.ReportMetric(acc.setup, "setup-acc-"+name)
			b.ReportMetric(acc.setupTiming, "timing-acc-"+name)
			b.ReportMetric(acc.whole, "whole-acc-"+name)
			b.ReportMetric(float64(hsCells)/float64(rounds), "hs-cells/fetch-"+name)
			b.ReportMetric(float64(hsTime.Microseconds())/1000, "hs-ms/fetch-"+name)
		}
	}
}

// shape is a trace's first n cells as directions and link commands.
func shape(cells []cellEvent, n int) string {
	var b []byte
	for i, c := range cells {
		if i == n {
			break
		}
		d := byte('<')
		if c.out {
			d = '>'
		}
		b = append(b, d, '0'+byte(c.cmd), ' ')
	}
	return string(b)
}

// With the setup machine, every hidden-service circuit of a client
// shows its guard the cells an exit circuit shows up to the request and
// the first cell of the response — build, request, answer, then a
// request and a response — and the circuits that carry no data
// (introduction, descriptor fetch) show the exit circuit's first
// setupCells cells. Without it they do not.
func TestSetupPaddingLooksLikeExit(t *testing.T) {
	e := newExperiment(t)
	for _, padded := range []bool{true, false} {
		var exit string // of the exit circuit with the longest response
		var hs []sample
		samples, _, _ := e.run(t, 2, padded)
		longest := 0
		for _, s := range samples {
			if !s.hs {
				if len(s.cells) > longest {
					exit, longest = shape(s.cells, setupCells), len(s.cells)
				}
			} else {
				hs = append(hs, s)
			}
		}
		prefix := exit[:6*3]
		mismatch := 0
		for _, s := range hs {
			got := shape(s.cells, setupCells)
			if !strings.HasPrefix(got, prefix) {
				mismatch++
				if padded {
					t.Errorf("padded hidden-service circuit starts %q, an exit circuit %q", got, prefix)
				}
			}
			if len(s.cells) <= setupCells+4 && got != exit { // no data: introduction, descriptor fetch
				mismatch++
				if padded {
					t.Errorf("padded circuit without data shows %q, an exit circuit %q", got, exit)
				}
			}
		}
		if !padded && mismatch == 0 {
			t.Errorf("without the machine, hidden-service circuits already look like exit circuits: the test shows nothing")
		}
	}
}
