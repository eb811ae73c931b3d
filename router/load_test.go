package router_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/circuittest"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
)

// A load run puts one exit relay, in a process of its own, under many
// open circuits of which some carry streams moving data. The circuits
// have one hop: the relay is both the first hop and the exit, so every
// circuit costs it a handshake, a layer and (when active) exit streams,
// the most a circuit can cost one relay. Several client hosts (peers of
// their own, one channel each) build the circuits.
//
// The run, in order:
//
//  1. build the active circuits (build rate, unloaded);
//  2. start one stream loop per active circuit: GET chunk bytes from the
//     local HTTP server, check the hash, again;
//  3. build the idle circuits while the streams run (build rate, loaded);
//  4. once every stream has moved data, measure throughput and the
//     relay's CPU time over a window;
//  5. stop the loops (each finishes its GET) and check every circuit is
//     still open, and the relay shed none and refused no CREATE;
//  6. one GET on (a sample of) the idle circuits: they still work;
//  7. close the idle circuits: the relay's memory freed is the memory
//     per idle circuit (measured before 6, once the streams have ended).
type loadConfig struct {
	clients  int           // client hosts
	circuits int           // circuits in all, active and idle
	streams  int           // active circuits, one stream loop each
	chunk    int           // bytes per GET
	window   time.Duration // throughput measured over this, all circuits open
	probe    int           // idle circuits probed with a GET after the load (0: all)
}

type loadResult struct {
	bytes                int64 // moved in the window
	elapsed              time.Duration
	relayCPU             time.Duration // in the window
	localCPU             time.Duration // this process's (clients, server) in the window
	gets                 int64         // complete GETs, in all
	build, loaded, quiet buildStats    // the active circuits (unloaded), the idle ones (loaded), a quiet client's (loaded)
	peakRSSKiB           int
	idleRSS, idleHeap    float64 // bytes per idle circuit
	goroutinesIdle       int     // relay goroutines with every circuit open and no stream
	circuitsBefore       int     // relay circuits with the load stopped
}

func (r loadResult) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

// perGB is CPU seconds per 10⁹ bytes carried.
func perGB(cpu time.Duration, bytes int64) float64 { return cpu.Seconds() / float64(bytes) * 1e9 }

// newLoadClients starts n client hosts, each with its link manager.
func newLoadClients(tb testing.TB, n int) []*link.Manager {
	ms := make([]*link.Manager, n)
	for i := range ms {
		h := newHost(tb)
		ms[i] = link.NewManager(h, link.Config{})
		ms[i].Start()
		tb.Cleanup(func() { ms[i].Close(); h.Close() })
	}
	return ms
}

// buildStats are the figures of one batch of builds.
type buildStats struct {
	rate   float64       // circuits a second
	median time.Duration // one build's time
}

// buildLoad builds n one-hop circuits through hop, spread over the
// clients, a few at a time from each.
func buildLoad(tb testing.TB, clients []*link.Manager, hop client.Hop, n int) ([]*client.Circuit, buildStats) {
	const perClient = 8 // concurrent builds per client
	out := make([]*client.Circuit, n)
	took := make([]time.Duration, n)
	var next atomic.Int64
	var mu sync.Mutex
	var failed error
	var wg sync.WaitGroup
	start := time.Now()
	for range perClient * len(clients) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				t0 := time.Now()
				c, err := client.Build(ctx, clients[i%len(clients)], []client.Hop{hop})
				took[i] = time.Since(t0)
				cancel()
				if err != nil {
					mu.Lock()
					failed = cmp.Or(failed, fmt.Errorf("circuit %d: %w", i, err))
					mu.Unlock()
					return
				}
				out[i] = c
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		tb.Fatalf("build: %v", failed)
	}
	st := buildStats{rate: float64(n) / time.Since(start).Seconds()}
	if n > 0 {
		slices.Sort(took)
		st.median = took[n/2]
	}
	return out, st
}

// streamLoops runs one GET loop per dial function until stop is closed;
// each loop finishes the GET it is in. wait returns the first error.
type streamLoops struct {
	moved, gets atomic.Int64
	flowing     sync.WaitGroup // done for each loop once its first bytes arrived (or it failed)
	stop        chan struct{}
	wg          sync.WaitGroup
	errOnce     sync.Once
	err         error
}

func startLoops(dials []func() (net.Conn, error), chunk int, want [32]byte) *streamLoops {
	l := &streamLoops{stop: make(chan struct{})}
	l.flowing.Add(len(dials))
	for _, dial := range dials {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var first sync.Once
			defer first.Do(l.flowing.Done)
			onData := func(n int) {
				l.moved.Add(int64(n))
				first.Do(l.flowing.Done)
			}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := l.once(dial, chunk, want, onData); err != nil {
					l.errOnce.Do(func() { l.err = err })
					return
				}
			}
		}()
	}
	return l
}

// waitFlowing waits until every loop has received data (or failed).
func (l *streamLoops) waitFlowing(tb testing.TB) {
	done := make(chan struct{})
	go func() { l.flowing.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		tb.Fatal("streams not all moving data after 5 minutes")
	}
}

func (l *streamLoops) once(dial func() (net.Conn, error), chunk int, want [32]byte, onData func(int)) error {
	s, err := dial()
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer s.Close()
	got, err := circuittest.FetchBytes(s, chunk, onData)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if got != want {
		return errors.New("get: body differs")
	}
	l.gets.Add(1)
	return nil
}

func (l *streamLoops) wait() error {
	close(l.stop)
	l.wg.Wait()
	return l.err
}

// circuitDial dials the data server through c.
func circuitDial(c *client.Circuit, port uint16) func() (net.Conn, error) {
	return func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return c.Dial(ctx, "127.0.0.1", port)
	}
}

// runLoad runs one load run (see loadConfig) against a fresh relay.
func runLoad(tb testing.TB, cfg loadConfig, port uint16, want [32]byte) loadResult {
	var res loadResult
	relay := startLoadRelay(tb)
	clients := newLoadClients(tb, cfg.clients)
	warm, _ := buildLoad(tb, clients, relay.hop, cfg.clients) // each client's channel open
	for _, c := range warm {
		c.Close()
	}
	waitCircuits(tb, relay, 0)
	active, bs := buildLoad(tb, clients, relay.hop, cfg.streams)
	res.build = bs
	dials := make([]func() (net.Conn, error), len(active))
	for i, c := range active {
		dials[i] = circuitDial(c, port)
	}
	loops := startLoops(dials, cfg.chunk, want)
	idle, bs := buildLoad(tb, clients, relay.hop, cfg.circuits-cfg.streams)
	res.loaded = bs
	loops.waitFlowing(tb)
	st0, m0, t0, c0 := relay.stats(tb, false), loops.moved.Load(), time.Now(), cpuTime()
	time.Sleep(cfg.window) // the measurement window
	st1, m1, t1, c1 := relay.stats(tb, false), loops.moved.Load(), time.Now(), cpuTime()
	res.bytes, res.elapsed, res.relayCPU, res.localCPU = m1-m0, t1.Sub(t0), st1.CPU-st0.CPU, c1-c0
	res.quiet = quietBuilds(tb, relay.hop, min(cfg.circuits-cfg.streams, 100))
	if err := loops.wait(); err != nil {
		tb.Fatalf("stream loop: %v", err)
	}
	res.gets = loops.gets.Load()
	for i, c := range append(active, idle...) {
		if err := c.Err(); err != nil {
			tb.Fatalf("circuit %d lost under load: %v", i, err)
		}
	}
	full := waitStreams(tb, relay)
	res.circuitsBefore, res.goroutinesIdle = full.Router.Circuits, full.Goroutines
	if n := full.Router.Link.Shed + full.Router.Link.Overflows; n != 0 || full.Router.RefusedCreates != 0 {
		tb.Fatalf("relay shed %d circuits and refused %d CREATEs", n, full.Router.RefusedCreates)
	}
	probeIdle(tb, idle, cfg.probe, port, cfg.chunk, want)
	for _, c := range idle {
		c.Close()
	}
	after := waitCircuits(tb, relay, cfg.streams)
	if n := len(idle); n > 0 {
		res.idleRSS = float64(full.RSSKiB-after.RSSKiB) * 1024 / float64(n)
		res.idleHeap = (float64(full.HeapInuse) - float64(after.HeapInuse)) / float64(n)
	}
	res.peakRSSKiB = after.PeakRSSKiB
	for _, c := range active {
		c.Close()
	}
	return res
}

// quietBuilds builds (and closes) n circuits from a client host of its
// own, whose channel carries no data, while the relay is loaded: builds
// that do not wait behind bulk cells on their channel.
func quietBuilds(tb testing.TB, hop client.Hop, n int) buildStats {
	if n == 0 {
		return buildStats{}
	}
	cs, st := buildLoad(tb, newLoadClients(tb, 1), hop, n)
	for _, c := range cs {
		c.Close()
	}
	return st
}

// probeIdle fetches one chunk through n of the idle circuits (all if n is
// 0), spread over them, to show they survived the load.
func probeIdle(tb testing.TB, idle []*client.Circuit, n int, port uint16, chunk int, want [32]byte) {
	if n <= 0 || n > len(idle) {
		n = len(idle)
	}
	if n == 0 {
		return
	}
	step := len(idle) / n
	dials := make([]func() (net.Conn, error), 0, n)
	for i := 0; i < len(idle) && len(dials) < n; i += step {
		dials = append(dials, circuitDial(idle[i], port))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(dials))
	for _, dial := range dials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := streamLoops{}
			if err := l.once(dial, chunk, want, func(int) {}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatalf("idle circuit after the load: %v", err)
	}
}

// waitCircuits waits until the relay carries n circuits and returns its
// figures then (after a GC).
func waitCircuits(tb testing.TB, relay *loadRelay, n int) loadRelayStats {
	deadline := time.Now().Add(time.Minute)
	for {
		st := relay.stats(tb, false)
		if st.Router.Circuits == n {
			return relay.stats(tb, true)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("relay carries %d circuits, want %d", st.Router.Circuits, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitStreams waits until the relay's exit streams have ended and
// returns its figures then (after a GC).
func waitStreams(tb testing.TB, relay *loadRelay) loadRelayStats {
	deadline := time.Now().Add(time.Minute)
	for relay.stats(tb, false).Router.Streams != 0 {
		if time.Now().After(deadline) {
			tb.Fatal("relay's exit streams never ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return relay.stats(tb, true)
}

// runDirect is the baseline: the same stream loops straight to the data
// server over TCP, measured over the same window.
func runDirect(tb testing.TB, cfg loadConfig, port uint16, want [32]byte) loadResult {
	addr := "127.0.0.1:" + strconv.Itoa(int(port))
	dials := make([]func() (net.Conn, error), cfg.streams)
	for i := range dials {
		dials[i] = func() (net.Conn, error) { return net.Dial("tcp", addr) }
	}
	loops := startLoops(dials, cfg.chunk, want)
	loops.waitFlowing(tb)
	m0, t0, c0 := loops.moved.Load(), time.Now(), cpuTime()
	time.Sleep(cfg.window)
	m1, t1, c1 := loops.moved.Load(), time.Now(), cpuTime()
	if err := loops.wait(); err != nil {
		tb.Fatalf("direct loop: %v", err)
	}
	return loadResult{bytes: m1 - m0, elapsed: t1.Sub(t0), localCPU: c1 - c0, gets: loops.gets.Load()}
}

// A relay carrying many idle circuits and some streams moving data at
// once: every GET arrives byte for byte, no circuit is lost, every idle
// circuit still carries a stream afterwards, idle circuits cost no
// goroutine and a bounded amount of memory, and nothing is shed.
func TestLoad(t *testing.T) {
	cfg := loadConfig{clients: 2, circuits: 120, streams: 12, chunk: 32 << 10, window: time.Second}
	port, sum := dataServer(t)
	res := runLoad(t, cfg, port, sum(cfg.chunk))
	t.Logf("%d GETs, %.1f MB/s, builds %.0f/s unloaded, %.0f/s loaded, idle circuit %.0f B RSS %.0f B heap, relay peak RSS %d KiB, %d goroutines",
		res.gets, res.mbps(), res.build.rate, res.loaded.rate, res.idleRSS, res.idleHeap, res.peakRSSKiB, res.goroutinesIdle)
	if res.gets < int64(cfg.streams) {
		t.Errorf("%d GETs complete, want at least one per stream (%d)", res.gets, cfg.streams)
	}
	if res.circuitsBefore != cfg.circuits {
		t.Errorf("relay carries %d circuits after the load, want %d", res.circuitsBefore, cfg.circuits)
	}
	// An idle circuit holds no goroutine: the relay's goroutines are its
	// host's and its channels', far fewer than its circuits.
	if res.goroutinesIdle >= cfg.circuits {
		t.Errorf("relay runs %d goroutines for %d idle circuits", res.goroutinesIdle, cfg.circuits)
	}
	// A few KiB of heap per idle circuit (6 KB measured); 64 KiB would mean
	// a buffer kept per circuit.
	if res.idleHeap > 64<<10 {
		t.Errorf("%.0f B of relay heap per idle circuit", res.idleHeap)
	}
}

// BenchmarkLoad puts one exit relay (a process of its own) under 10,000
// open one-hop circuits from 10 client hosts, 1,000 of which carry
// streams moving data, and compares it in the same run with the same
// streams and no idle circuits, and with the streams straight over TCP:
//
//	go test -run XXX -bench Load -benchtime 1x -timeout 30m ./router
//
// OBOL_LOAD_CIRCUITS, OBOL_LOAD_STREAMS, OBOL_LOAD_CLIENTS and
// OBOL_LOAD_WINDOW (a duration) change the size.
func BenchmarkLoad(b *testing.B) {
	cfg := loadConfig{clients: 10, circuits: 10000, streams: 1000, chunk: 1 << 20, window: 30 * time.Second, probe: 500}
	envInt(b, "OBOL_LOAD_CIRCUITS", &cfg.circuits)
	envInt(b, "OBOL_LOAD_STREAMS", &cfg.streams)
	envInt(b, "OBOL_LOAD_CLIENTS", &cfg.clients)
	if v := os.Getenv("OBOL_LOAD_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		cfg.window = d
	}
	port, sum := dataServer(b)
	want := sum(cfg.chunk)
	b.Run(fmt.Sprintf("DirectTCP/streams=%d", cfg.streams), func(b *testing.B) {
		var res loadResult
		for b.Loop() {
			res = runDirect(b, cfg, port, want)
		}
		b.ReportMetric(res.mbps(), "MB/s")
		b.ReportMetric(perGB(res.localCPU, res.bytes), "process-cpu-s/GB")
	})
	for _, circuits := range []int{cfg.streams, cfg.circuits} {
		c := cfg
		c.circuits = circuits
		b.Run(fmt.Sprintf("Relay/circuits=%d/streams=%d", circuits, cfg.streams), func(b *testing.B) {
			var res loadResult
			for b.Loop() {
				res = runLoad(b, c, port, want)
			}
			reportLoad(b, res, c)
		})
	}
}

func reportLoad(b *testing.B, res loadResult, cfg loadConfig) {
	b.ReportMetric(res.mbps(), "MB/s")
	b.ReportMetric(perGB(res.relayCPU, res.bytes), "relay-cpu-s/GB")
	b.ReportMetric(perGB(res.localCPU, res.bytes), "clients-cpu-s/GB")
	b.ReportMetric(float64(res.peakRSSKiB)/1024, "relay-peak-RSS-MiB")
	b.ReportMetric(res.build.rate, "builds/s")
	b.ReportMetric(ms(res.build.median), "build-ms")
	if cfg.circuits > cfg.streams {
		b.ReportMetric(res.loaded.rate, "builds/s-loaded")
		b.ReportMetric(ms(res.loaded.median), "build-ms-loaded")
		b.ReportMetric(ms(res.quiet.median), "build-ms-loaded-quiet-client")
		b.ReportMetric(res.idleRSS, "relay-B/idle-circuit")
		b.ReportMetric(res.idleHeap, "relay-heap-B/idle-circuit")
	}
	b.ReportMetric(float64(res.goroutinesIdle), "relay-goroutines")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func envInt(tb testing.TB, name string, v *int) {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		*v = n
	}
}
