package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/obolnet/obol/circuit/circuittest"
	"github.com/obolnet/obol/internal/netemu"
)

// The namespace mode runs obol as applications meet it: relays and a
// proxy as processes of the obol binary, each node in a network
// namespace of its own, linked by netemu's forwarder over TUN devices
// with a one-way delay on every link (TCP and QUIC, DHT traffic
// included), and curl fetching through the proxy's SOCKS5 port from a
// plain HTTP server in a namespace of its own. The direct baseline is
// curl to the server over a link whose delay is the whole path's.
//
//	client ns: obol proxy, curl ──┐
//	relay ns ×N: obol relay ──────┼── forwarder (this process) ── server ns: HTTP
//	                              └── TUN device per namespace

// NetnsConfig is what a namespace run measures and how much.
type NetnsConfig struct {
	// Exe is the obol binary the relays and the proxy run. Required.
	Exe string
	// Relays is how many relays run (every one a guard and an exit).
	Relays int
	// Hops is the proxy's circuit length.
	Hops int
	// Delay is every link's one-way delay; the direct link from the
	// client to the server delays by (Hops+1) × Delay, as the circuit's
	// path does.
	Delay time.Duration
	// TTFBSamples is how many times each first-byte scenario runs.
	TTFBSamples int
	// BulkBytes is what each bulk fetch moves; BulkRounds how many times
	// each bulk scenario runs; Parallel the circuits of the parallel one
	// (0 or 1: not measured).
	BulkBytes, BulkRounds, Parallel int
	// Quick marks the settings as the short run's, for the report.
	Quick bool
	// Progress, if set, is told of each step: done of total, and what.
	Progress func(done, total int, what string)
	// Now is the clock for the report's date (default time.Now).
	Now func() time.Time
}

// NetnsFromConfig takes a namespace run's settings from a loopback
// run's: the same delay, hops, samples and sizes, 8 relays.
func NetnsFromConfig(c Config, exe string) NetnsConfig {
	return NetnsConfig{Exe: exe, Relays: 8, Hops: c.Hops, Delay: c.Link.Delay, TTFBSamples: c.TTFBSamples,
		BulkBytes: c.BulkBytes, BulkRounds: c.BulkRounds, Parallel: c.Parallel, Quick: c.Quick,
		Progress: c.Progress, Now: c.Now}
}

// Validate reports settings a namespace run cannot use.
func (c *NetnsConfig) Validate() error {
	switch {
	case c.Exe == "":
		return errors.New("bench: no obol binary for the relays and the proxy")
	case c.Hops < 1 || c.Hops > 8:
		return errors.New("bench: hops must be 1 to 8")
	case c.Relays < max(c.Hops, 2) || c.Relays > 64:
		return errors.New("bench: want at least as many relays as hops, at least 2 and at most 64")
	case c.TTFBSamples < 1 || c.BulkRounds < 1 || c.BulkBytes < 1:
		return errors.New("bench: samples, rounds and sizes must be at least 1")
	case c.Delay < 0:
		return errors.New("bench: delay must not be negative")
	}
	return nil
}

// Node numbers in the emulated network.
const (
	nodeClient = 0
	nodeServer = 1
	nodeRelay0 = 2
)

// serverPort is where the HTTP server listens in its namespace, taking
// TCP Fast Open (RFC 7413) as exits ask for it; serverPortPlain, the same
// server without it.
const (
	serverPort      = 8080
	serverPortPlain = 8081
)

// nsRun is one namespace run's state.
type nsRun struct {
	cfg      NetnsConfig
	rep      *NetnsReport
	dir      string // the processes' data directories
	net      *netemu.Net
	relays   []*proc
	relayIDs []string
	proxy    *proc
	wmem     string                  // the server namespace's tcp_wmem as the kernel set it
	fail     context.CancelCauseFunc // ends the run with an error
	total    int
	done     int

	// closers run in reverse order at the end.
	closers []func()
}

func (b *nsRun) step(what string) {
	b.done++
	if b.cfg.Progress != nil {
		b.cfg.Progress(min(b.done, b.total), b.total, what)
	}
}

// RunNetns brings up the namespaces, the relays, the proxy and the
// server, measures, and removes everything it made, also when it fails
// or ctx ends.
func RunNetns(ctx context.Context, cfg NetnsConfig) (*NetnsReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	start := time.Now()
	b := &nsRun{cfg: cfg, rep: &NetnsReport{Date: cfg.Now().UTC(), Hardware: ReadHardware(), Settings: cfg.settings()}}
	b.rep.LoadAvg[0] = loadAvg()
	b.total = 3 + 3*cfg.TTFBSamples + 3*cfg.BulkRounds
	if cfg.Parallel > 1 {
		b.total += 2 * cfg.BulkRounds
	}
	// A forwarder that fails ends the run with its error.
	ctx, b.fail = context.WithCancelCause(ctx)
	defer b.fail(nil)
	defer b.close()
	if err := b.measure(ctx); err != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(c, context.DeadlineExceeded) {
			return nil, c
		}
		return nil, err
	}
	s := b.net.Stats()
	b.rep.Forwarder = ForwarderStats{Packets: s.Forwarded, Lost: s.Overflow + s.WriteErrors,
		Unroutable: s.NoRoute + s.NotIPv4}
	b.rep.LoadAvg = [2]string{b.rep.LoadAvg[0], loadAvg()}
	b.rep.Elapsed = time.Since(start)
	return b.rep, nil
}

// measure starts everything and runs the scenarios.
func (b *nsRun) measure(ctx context.Context) error {
	if err := b.start(ctx); err != nil {
		return err
	}
	for _, m := range []func(context.Context) error{b.measureTTFB, b.measureBulk, b.measureParallel} {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m(ctx); err != nil {
			return err
		}
	}
	return nil
}

// loadAvg is the machine's load averages over 1, 5 and 15 minutes.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func (c *NetnsConfig) settings() NetnsSettings {
	return NetnsSettings{Quick: c.Quick, Relays: c.Relays, Hops: c.Hops, DelayMs: ms(c.Delay),
		PathRTTms: ms(2 * time.Duration(c.Hops+1) * c.Delay), TTFBSamples: c.TTFBSamples,
		BulkBytes: c.BulkBytes, BulkRounds: c.BulkRounds, Parallel: c.Parallel}
}

// delay is the one-way delay of the link from node from to node to.
func (c *NetnsConfig) delay(from, to int) time.Duration {
	if (from == nodeClient && to == nodeServer) || (from == nodeServer && to == nodeClient) {
		return time.Duration(c.Hops+1) * c.Delay
	}
	return c.Delay
}

// start creates the network and brings up the server, the relays and
// the proxy.
func (b *nsRun) start(ctx context.Context) error {
	b.step("creating namespaces")
	dir, err := os.MkdirTemp("", "obol-bench-netns-")
	if err != nil {
		return err
	}
	b.dir = dir
	b.closers = append(b.closers, func() { os.RemoveAll(dir) })
	names := []string{"client", "server"}
	for i := range b.cfg.Relays {
		names = append(names, fmt.Sprintf("r%d", i))
	}
	b.net, err = netemu.Create(netemu.Config{Prefix: fmt.Sprintf("ob%d", os.Getpid()%10000000), Nodes: names,
		Delay: b.cfg.delay})
	if err != nil {
		return err
	}
	b.closers = append(b.closers, func() { b.net.Close() })
	fctx, cancel := context.WithCancel(context.Background())
	var fwd sync.WaitGroup
	fwd.Go(func() {
		if err := b.net.Run(fctx); err != nil {
			b.fail(fmt.Errorf("bench: the forwarder failed: %w", err))
		}
	})
	b.closers = append(b.closers, func() { cancel(); fwd.Wait() })
	if err := b.startServer(ctx); err != nil {
		return err
	}
	if b.rep.TCP, err = b.tcpSettings(ctx); err != nil {
		return err
	}
	b.step("starting relays")
	if err := b.startRelays(ctx); err != nil {
		return err
	}
	sources, err := b.waitViews(ctx)
	if err != nil {
		return err
	}
	b.step("starting the proxy")
	return b.startProxy(ctx, sources)
}

// tcpSettings are the kernel's TCP settings in the server's namespace,
// which bound the direct baseline: the sender's buffer (tcp_wmem), the
// receiver's (tcp_rmem) and the congestion control.
func (b *nsRun) tcpSettings(ctx context.Context) (string, error) {
	var parts []string
	for _, k := range []string{"tcp_wmem", "tcp_rmem", "tcp_congestion_control"} {
		out, err := b.net.Command(ctx, nodeServer, "cat", "/proc/sys/net/ipv4/"+k).Output()
		if err != nil {
			return "", fmt.Errorf("bench: read %s in the server's namespace: %w", k, err)
		}
		v := strings.Join(strings.Fields(string(out)), " ")
		if k == "tcp_wmem" {
			b.wmem = v
		}
		parts = append(parts, k+" "+v)
	}
	return strings.Join(parts, "; "), nil
}

// startServer serves /bytes/N in the server's namespace: on serverPort
// with TCP Fast Open, on serverPortPlain without.
func (b *nsRun) startServer(ctx context.Context) error {
	// Bit 2 lets listeners that ask for it take Fast Open; bit 1, the
	// kernel's default, lets clients ask.
	if out, err := b.net.Command(ctx, nodeServer, "sysctl", "-q", "-w", "net.ipv4.tcp_fastopen=3").CombinedOutput(); err != nil {
		return fmt.Errorf("bench: sysctl tcp_fastopen in the server's namespace: %v: %s", err, out)
	}
	for _, port := range []int{serverPort, serverPortPlain} {
		var lc net.ListenConfig
		if port == serverPort {
			lc.Control = listenFastOpen
		}
		l, err := b.net.ListenConfig(nodeServer, lc, "tcp4", fmt.Sprintf("%s:%d", b.net.Nodes()[nodeServer].Addr, port))
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: http.HandlerFunc(circuittest.ServeBytes), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		b.closers = append(b.closers, func() { srv.Close() })
	}
	return nil
}

// relayAddr is relay i's QUIC multiaddr with its peer ID.
func (b *nsRun) relayAddr(i int) string {
	return fmt.Sprintf("/ip4/%s/udp/7400/quic-v1/p2p/%s", b.net.Nodes()[nodeRelay0+i].Addr, b.relayIDs[i])
}

// startRelays starts relay 0, then the others bootstrapping from it, and
// waits for each to print its peer ID.
func (b *nsRun) startRelays(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b.relays = make([]*proc, b.cfg.Relays)
	b.relayIDs = make([]string, b.cfg.Relays)
	if err := b.startRelay(ctx, 0, ""); err != nil {
		return err
	}
	boot := b.relayAddr(0)
	errs := make([]error, b.cfg.Relays)
	var wg sync.WaitGroup
	for i := 1; i < b.cfg.Relays; i++ {
		wg.Go(func() { errs[i] = b.startRelay(ctx, i, boot) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startRelay starts relay i, a guard and an exit that may reach the
// emulated network's private addresses, and waits for its peer ID.
func (b *nsRun) startRelay(ctx context.Context, i int, bootstrap string) error {
	ip := b.net.Nodes()[nodeRelay0+i].Addr
	args := []string{"relay", "--data-dir", filepath.Join(b.dir, fmt.Sprintf("r%d", i)),
		"--listen", fmt.Sprintf("/ip4/%s/udp/7400/quic-v1,/ip4/%s/tcp/7400", ip, ip),
		"--skip-reach-check", "--roles", "relay,guard,exit",
		"--exit-policy", "accept *:*", "--exit-allow-private-destinations-unsafe", "--status", statusAddr,
		// A descriptor gossiped before the relays' mesh formed reaches
		// nobody: republish often, so that every relay soon knows all.
		"--lifetime", "10m", "--republish", "5s", "--log-level", "warn"}
	if bootstrap != "" {
		args = append(args, "--bootstrap", bootstrap)
	}
	p, err := startProc(fmt.Sprintf("relay %d", i), b.net.Command(context.Background(), nodeRelay0+i, b.cfg.Exe, args...))
	if err != nil {
		return err
	}
	b.relays[i] = p // stopped by close
	id, err := p.waitLine(ctx, "peer ID: ")
	b.relayIDs[i] = strings.TrimSpace(id)
	return err
}

// startProxy starts `obol proxy` in the client's namespace, joining
// through the relays sources, with no prebuilt circuits, so that a new
// SOCKS user name (a new isolation key) builds a circuit on demand, and
// waits until a request goes through it.
func (b *nsRun) startProxy(ctx context.Context, sources []int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var boot []string
	for _, i := range sources {
		boot = append(boot, b.relayAddr(i))
	}
	args := []string{"proxy", "--bootstrap", strings.Join(boot, ","), "--data-dir", filepath.Join(b.dir, "proxy"),
		"--socks", socksAddr, "--hops", fmt.Sprint(b.cfg.Hops), "--prebuilt", "0",
		"--min-exit-age", "0", "--min-guard-age", "0", "--status", statusAddr, "--log-level", "warn"}
	p, err := startProc("proxy", b.net.Command(context.Background(), nodeClient, b.cfg.Exe, args...))
	if err != nil {
		return err
	}
	b.proxy = p
	if _, err := p.waitLine(ctx, "obol proxy listening"); err != nil {
		return err
	}

	// The first requests may find the view still short of exits.
	var last error
	for ctx.Err() == nil {
		if _, last = b.curl(ctx, "warm-up", 1024, false); last == nil {
			// Measure on a whole view if the proxy gets one soon; report
			// what it had otherwise.
			vctx, vcancel := context.WithTimeout(ctx, 20*time.Second)
			defer vcancel()
			b.rep.RelaysKnown = max(b.waitKnown(vctx, nodeClient), 0)
			return nil
		}
		select {
		case <-ctx.Done():
		case <-p.done:
			return fmt.Errorf("bench: the proxy ended: %w\nproxy:\n%s", last, p.tail())
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("bench: no request went through the proxy: %w\nproxy:\n%s", last, p.tail())
}

// close stops the processes, then removes the network.
func (b *nsRun) close() {
	var wg sync.WaitGroup
	for _, p := range append([]*proc{b.proxy}, b.relays...) {
		if p != nil {
			wg.Go(p.stop)
		}
	}
	wg.Wait()
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}
