package hidden_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/hidden"
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
func newExpNet(t testing.TB, n int) *testNet { return newHSNet(t, n, descriptor.RoleExit) }

// tracedEndpoint is tn.endpoint with its links traced.
func (tn *testNet) tracedEndpoint(tr *tracer) hidden.Config {
	h := newHost(tn.t)
	lm := link.NewManager(h, link.Config{Trace: tr.record, Padding: link.PaddingConfig{Mode: link.PaddingOff}})
	lm.Start()
	tn.t.Cleanup(func() { lm.Close() })
	return hidden.Config{Links: lm, Directory: tn.dir}
}

// hop is relay i as a path hop.
func (tn *testNet) hop(i int) client.Hop { return tn.relays[i].Hop() }

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

// fetchHidden fetches size bytes from the service at addr with a fresh
// client.
func fetchHidden(t testing.TB, n hidden.Config, addr string, size int) error {
	c, err := hidden.NewConnector(n)
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
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Config: sn, Key: newKey(t)})
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
