package hidden_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/circuit/padding"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht/dhttest"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/router"
)

// The circuit-type experiment (specs/12-padding.md, "Measurements"):
// circuits to exits and hidden-service circuits, traced as the client's
// guard sees them on its link, classified by k-NN.

// cellEvent is one cell on a traced link.
type cellEvent struct {
	at  time.Duration // since the circuit's first cell
	out bool          // client → guard
	cmd circuit.Command
}

// tracer records the cells of every circuit on a client's links.
type tracer struct {
	mu    sync.Mutex
	start map[traceKey]time.Time
	circs map[traceKey][]cellEvent
	order []traceKey
}

type traceKey struct {
	ch *link.Channel
	id uint32
}

func newTracer() *tracer {
	return &tracer{start: map[traceKey]time.Time{}, circs: map[traceKey][]cellEvent{}}
}

func (tr *tracer) record(ch *link.Channel, out bool, id uint32, cmd circuit.Command) {
	if id == 0 {
		return // link cells: no circuit
	}
	now := time.Now()
	k := traceKey{ch, id}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	t0, ok := tr.start[k]
	if !ok {
		t0 = now
		tr.start[k] = now
		tr.order = append(tr.order, k)
	}
	tr.circs[k] = append(tr.circs[k], cellEvent{now.Sub(t0), out, cmd})
}

// take returns the traces recorded so far and forgets them.
func (tr *tracer) take() [][]cellEvent {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out [][]cellEvent
	for _, k := range tr.order {
		out = append(out, tr.circs[k])
	}
	tr.start, tr.circs, tr.order = map[traceKey]time.Time{}, map[traceKey][]cellEvent{}, nil
	return out
}

// newExpNet is newTestNet with every relay an exit too.
func newExpNet(t testing.TB, n int) *testNet {
	tn := &testNet{t: t, dir: &directory{addrs: map[peer.ID]peer.AddrInfo{}, descs: map[peer.ID]*descriptor.Relay{}}}
	tn.dhtNet = dhttest.NewNetwork(t, n, dhttest.Options{})
	now := time.Now()
	pol, err := router.ParseExitPolicy([]string{"accept *:*"}, router.AllowLoopback())
	if err != nil {
		t.Fatal(err)
	}
	for _, dr := range tn.dhtNet.Relays {
		onion, err := circuit.GenerateOnionKey(rand.Reader, 1)
		if err != nil {
			t.Fatal(err)
		}
		h := newHost(t)
		rt, err := router.New(h, router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: tn.dir, Exit: pol})
		if err != nil {
			t.Fatal(err)
		}
		rt.SetHSDirectory(hidden.DHTDirectory{Node: dr.Node})
		ctx, cancel := context.WithCancel(context.Background())
		r := &relay{dht: dr, host: h, router: rt, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(r.done); rt.Run(ctx) }()
		d := dhttest.Describe(h, descriptor.RoleRelay|descriptor.RoleGuard|descriptor.RoleIntro|descriptor.RoleRendezvous|descriptor.RoleExit)
		d.OnionKeys = []descriptor.OnionKey{{Key: onion.Public, NotAfter: now.Add(24 * time.Hour).Unix()}}
		tn.dir.addrs[h.ID()] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
		tn.dir.descs[h.ID()] = d
		tn.relays = append(tn.relays, r)
	}
	t.Cleanup(func() {
		for _, r := range tn.relays {
			r.stop()
		}
	})
	return tn
}

// tracedEndpoint is tn.endpoint with its links traced.
func (tn *testNet) tracedEndpoint(tr *tracer) hidden.Network {
	h := newHost(tn.t)
	lm := link.NewManager(h, link.Config{Trace: tr.record, Padding: link.PaddingConfig{Mode: link.PaddingOff}})
	lm.Start()
	tn.t.Cleanup(func() { lm.Close() })
	return hidden.Network{Links: lm, Directory: tn.dir}
}

// hop is relay i as a path hop.
func (tn *testNet) hop(i int) client.Hop {
	r := tn.relays[i]
	d := tn.dir.descs[r.id()]
	return client.Hop{Peer: tn.dir.addrs[r.id()], OnionKey: d.OnionKeys[0].Key}
}

// page serves a synthetic page of size bytes at /<size>.
func pageServer(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Path[1:])
		w.Write(make([]byte, n))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// fetchExit builds a circuit through relays g, m, e and fetches size
// bytes from the page server through it.
func fetchExit(ctx context.Context, n hidden.Network, tn *testNet, g, m, e int, server string, size int) error {
	c, err := client.Build(ctx, n.Links, []client.Hop{tn.hop(g), tn.hop(m), tn.hop(e)})
	if err != nil {
		return err
	}
	defer c.Close()
	host, port, _ := net.SplitHostPort(server)
	p, _ := strconv.Atoi(port)
	s, err := c.Dial(ctx, host, uint16(p))
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(s, "GET /%d HTTP/1.0\r\nHost: x\r\n\r\n", size)
	_, err = io.Copy(io.Discard, s)
	return err
}

// fetchHidden fetches size bytes from the service at addr with a fresh
// client.
func fetchHidden(t testing.TB, n hidden.Network, addr string, size int) error {
	c, err := hidden.NewClient(n)
	if err != nil {
		return err
	}
	defer c.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: c.Dial, DisableKeepAlives: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/"+strconv.Itoa(size), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// sites are the synthetic pages fetched, in bytes.
var sites = []int{2000, 5000, 12000, 30000, 80000}

// experiment is a network with a page server and a hidden service that
// serves the same pages.
type experiment struct {
	tn     *testNet
	server string
	onion  string
}

func newExperiment(t testing.TB) *experiment {
	tn := newExpNet(t, 6)
	e := &experiment{tn: tn, server: pageServer(t)}
	sn, _ := tn.endpoint()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Network: sn, Key: newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := strconv.Atoi(r.URL.Path[1:])
		w.Write(make([]byte, k))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	e.onion = l.Address()
	return e
}

// sample is one traced circuit.
type sample struct {
	hs    bool
	cells []cellEvent
}

// run fetches rounds pages over exit circuits (built with their BEGIN in
// the first flight) and rounds over hidden-service circuits, on a client
// whose links are traced, and returns the circuits' traces and the mean
// fetch time of each kind.
func (e *experiment) run(t testing.TB, rounds int, setupPadding bool) (out []sample, exitTime, hsTime time.Duration) {
	tr := newTracer()
	n := e.tn.tracedEndpoint(tr)
	n.NoSetupPadding = !setupPadding
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	host, port, _ := net.SplitHostPort(e.server)
	p, _ := strconv.Atoi(port)
	for i := range rounds {
		size := sites[i%len(sites)]
		g, m, x := i%6, (i+1)%6, (i+3)%6
		start := time.Now()
		path := []client.Hop{e.tn.hop(g), e.tn.hop(m), e.tn.hop(x)}
		c, s, err := client.BuildDial(ctx, n.Links, path, host, uint16(p), nil)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(s, "GET /%d HTTP/1.0\r\nHost: x\r\n\r\n", size)
		io.Copy(io.Discard, s)
		exitTime += time.Since(start)
		s.Close()
		c.Close()
		out = append(out, e.settle(t, tr, false)...)

		start = time.Now()
		if err := fetchHidden(t, n, e.onion, size); err != nil {
			t.Fatal(err)
		}
		hsTime += time.Since(start)
		out = append(out, e.settle(t, tr, true)...)
	}
	return out, exitTime / time.Duration(rounds), hsTime / time.Duration(rounds)
}

// settle waits until every circuit traced has ended (a DESTROY either
// way; cells in flight may follow it), then takes the traces of those the client built.
func (e *experiment) settle(t testing.TB, tr *tracer, hs bool) []sample {
	open := func() []string {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		var out []string
		for _, cells := range tr.circs {
			if cells[0].cmd != circuit.CmdCreate {
				continue // the tail of a circuit taken before: cells in flight
			}
			if !slices.ContainsFunc(cells, func(c cellEvent) bool { return c.cmd == circuit.CmdDestroy }) {
				out = append(out, shape(cells, 40))
			}
		}
		return out
	}
	for deadline := time.Now().Add(10 * time.Second); len(open()) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("circuits still open: %q", open())
		}
	}
	var out []sample
	for _, cells := range tr.take() {
		if cells[0].cmd == circuit.CmdCreate && cells[0].out {
			out = append(out, sample{hs: hs, cells: cells})
		}
	}
	return out
}

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

func zscore(xs [][]float64) {
	for d := range xs[0] {
		var mean, sd float64
		for _, x := range xs {
			mean += x[d]
		}
		mean /= float64(len(xs))
		for _, x := range xs {
			sd += (x[d] - mean) * (x[d] - mean)
		}
		sd = math.Sqrt(sd / float64(len(xs)))
		for _, x := range xs {
			if sd > 0 {
				x[d] = (x[d] - mean) / sd
			} else {
				x[d] = 0
			}
		}
	}
}

func dist(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += (a[i] - b[i]) * (a[i] - b[i])
	}
	return s
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
// (default 40).
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
func (e *experiment) visit(ctx context.Context, n hidden.Network, r *mrand.Rand, s site, g, m, x int, front bool) (time.Duration, error) {
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
