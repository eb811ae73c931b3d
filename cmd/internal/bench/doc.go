package bench

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/obolnet/obol/pay"
)

// WriteDoc writes the report as the Markdown document at path
// (docs/performance.md), replacing it, except for the section of a
// namespace run (NetnsReport.WriteDocSection), which it keeps at the end.
func (r *Report) WriteDoc(path string) error {
	var b bytes.Buffer
	r.writeDoc(&b)
	if old, err := os.ReadFile(path); err == nil {
		if sec := netnsSection(string(old)); sec != "" {
			b.WriteString("\n" + sec)
		}
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func (r *Report) writeDoc(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p("# Performance")
	p("")
	p("This page is written by `obol bench%s --doc docs/performance.md`; run it again to", r.flagsLine())
	p("regenerate it. Do not edit the figures by hand.")
	p("")
	p("- **Date:** %s", r.Date.Format(time.DateOnly+" 15:04 MST"))
	p("- **Hardware:** %s", r.Hardware)
	p("- **Settings:** %s; %d first-byte samples per scenario; bulk %s per stream, %d round(s), %d parallel circuits; %d builds per hop count; relay CPU over %s; memory over %d circuits. The run took %s.",
		r.Settings, r.Settings.TTFBSamples, sizeString(r.Settings.BulkBytes), r.Settings.BulkRounds, r.Settings.Parallel,
		r.Settings.BuildSamples, sizeString(r.Settings.CPUBytes), r.Settings.MemCircuits, r.Elapsed.Round(time.Second))
	p("")
	p("Everything runs in one process on loopback (relays with routers, exits allowed to reach loopback, a local HTTP server), except the relay whose CPU and memory are measured, which runs in a process of its own. Wide-area links are emulated in user space: every relay's QUIC address sits behind a forwarder that delays each datagram by the one-way delay, in both directions, so a path of *h* hops has an emulated round trip of 2 × *h* × delay. The exit reaches the server over plain loopback. Baselines run in the same run: **direct TCP** to the server, and a **plain chain** of libp2p hosts over the same transport and the same number of hops, each copying a stream to the next (no cells, no layers, no flow control of obol's).")
	p("")
	p("Every node, the forwarders and the client share the machine's %d cores, so the bulk figures are bounded by user-space forwarding as much as by obol, and they move from run to run by tens of percent when anything else runs. Ratios measured within one run, alternating, are the figures to trust. The payment scenario's transfers are shorter than the bulk scenarios', so its rates are lower.", r.Hardware.Cores)
	p("")
	r.docTargets(p)
	r.docTTFB(p)
	r.docBulk(p)
	r.docBuild(p)
	r.docResources(p)
	p("## Plots")
	p("")
	p("`obol bench --out DIR` writes `%s` (CDFs of time to first byte), `%s` (throughput bars) and `%s` (build time by hop count) next to `bench.json`, which holds every sample.", PlotTTFB, PlotBulk, PlotBuild)
}

// flagsLine is the command line flags that reproduce the run's settings.
func (r *Report) flagsLine() string {
	st := r.Settings
	base := Defaults()
	s := ""
	if st.Quick {
		base = QuickDefaults()
		s += " --quick"
	}
	b := base.settings()
	flag := func(name string, differs bool, v any) {
		if differs {
			s += fmt.Sprintf(" --%s %v", name, v)
		}
	}
	flag("delay", st.Link.Delay != b.Link.Delay, st.Link.Delay)
	flag("loss", st.Link.Loss != b.Link.Loss, st.Link.Loss)
	flag("bandwidth", st.Link.Bandwidth != b.Link.Bandwidth, st.Link.Bandwidth)
	flag("hops", st.Hops != b.Hops, st.Hops)
	flag("samples", st.TTFBSamples != b.TTFBSamples, st.TTFBSamples)
	flag("bulk", st.BulkBytes != b.BulkBytes, strings.ReplaceAll(sizeString(st.BulkBytes), " ", ""))
	flag("rounds", st.BulkRounds != b.BulkRounds, st.BulkRounds)
	flag("parallel", st.Parallel != b.Parallel, st.Parallel)
	flag("builds", st.BuildSamples != b.BuildSamples, st.BuildSamples)
	flag("circuits", st.MemCircuits != b.MemCircuits, st.MemCircuits)
	return s
}

type printer func(format string, args ...any)

func (r *Report) docTargets(p printer) {
	p("## Targets (10 ms one-way per link)")
	p("")
	p("| target | want | got | result |")
	p("|---|---|---|---|")
	for _, t := range r.Targets {
		p("| %s | %s | %s | %s |", t.Name, t.Want, t.Got, t.verdict())
	}
	p("")
}

func (r *Report) docTTFB(p printer) {
	p("## Time to first byte")
	p("")
	p("From nothing to the first byte of a 1 KiB HTTP answer; a fresh circuit is built for each sample over links already open. The emulated path RTT is %.0f ms.", r.PathRTTms)
	p("")
	p("| scenario | median ms | p90 ms |")
	p("|---|---:|---:|")
	for _, s := range r.TTFB {
		p("| %s%s | %.2f | %.2f |", s.Name, docBaseline(s.Baseline), s.Median, s.P90)
	}
	if pay := r.Payment; pay != nil && pay.Measured {
		p("| fresh circuit, unpaid (Build+Dial), payment run | %.2f | |", pay.UnpaidTTFB)
		p("| fresh circuit, paid (Build+Dial; channels funded and opened meanwhile) | %.2f | |", pay.PaidTTFB)
	}
	if pre, fresh := r.ttfb(TTFBPrebuilt), r.ttfb(TTFBBuildDial); pre != nil && fresh != nil && pre.Median > fresh.Median {
		p("")
		p("A pre-built circuit answers later than a fresh one: `(*Circuit).Dial` waits for the exit's CONNECTED before the request leaves (two path round trips), while `BuildDial` carries the request in the build's own flight (one).")
	}
	p("")
	if r.Hidden.Measured {
		p("Hidden service: cold is a new client's first byte (descriptor fetched through a circuit, rendezvous, introduction, the service's circuit to the rendezvous point, end-to-end handshake); warm is a new stream on the session already joined. The emulated round trip from client to service through the rendezvous point is %.0f ms; %s.", r.Hidden.JoinedRTTms, r.Hidden.Note)
	} else {
		p("Hidden service, cold and warm: %s.", r.Hidden.Note)
	}
	p("")
}

func (r *Report) docBulk(p printer) {
	p("## Bulk throughput")
	p("")
	p("Each stream fetches %s; the parallel scenarios run %d streams at once, each on a circuit of its own (over the same relays). Medians of the rounds, in 10⁶ bytes per second. Between two nodes every circuit shares one channel, and every plain-chain stream one QUIC connection, so the parallel streams share each link's congestion window: the parallel scenarios show the cost of contention more than extra capacity.", sizeString(r.Settings.BulkBytes), r.Settings.Parallel)
	p("")
	p("| scenario | MB/s |")
	p("|---|---:|")
	for _, t := range r.Bulk {
		p("| %s%s | %.1f |", t.Name, docBaseline(t.Baseline), t.MBps)
	}
	p("")
	t := pay.DefaultTerms
	if pay := r.Payment; pay != nil && pay.Measured {
		p("**Payments.** A circuit whose %d relays charge the default terms (%d msat per MiB and %d per circuit, %s prepaid, %s free), paid through Spilman channels funded at the test mint, against an unpaid circuit on a network of the same shape, in alternating transfers of %s (%s each): unpaid %.1f MB/s, paid %.1f MB/s (%.0f%%). Payment cells were %.3f%% of the data; relays paused circuits for payment %d times.",
			r.Settings.Hops, t.PerMiB, t.PerCircuit, sizeString(int(t.PrepayBytes)), sizeString(int(t.FreeBytes)),
			sizeString(paymentChunk(r.Settings.BulkBytes)), sizeString(int(pay.Bytes)), pay.UnpaidMBps, pay.PaidMBps, 100*pay.Ratio, 100*pay.PaymentShare, pay.Pauses)
	} else if pay != nil {
		p("**Payments:** %s.", pay.Note)
	}
	p("")
}

func (r *Report) docBuild(p printer) {
	p("## Circuit build time by hop count")
	p("")
	p("| hops | median ms | p90 ms | path RTT ms |")
	p("|---:|---:|---:|---:|")
	for _, bt := range r.Build {
		p("| %d | %.2f | %.2f | %.0f |", bt.Hops, bt.Median, bt.P90, bt.PathRTTms)
	}
	p("")
}

func (r *Report) docResources(p printer) {
	p("## Relay resources")
	p("")
	p("Measured on a relay in a process of its own, as the middle hop of a 3-hop circuit over plain loopback links, from the kernel's accounting of its CPU time (user + system); the baseline is a plain chain's middle host in that same process.")
	p("")
	p("| node | CPU s per GiB forwarded | peak resident set of the process during the transfer |")
	p("|---|---:|---:|")
	for _, c := range r.CPU {
		p("| %s%s | %.2f | %.1f MiB |", c.Name, docBaseline(c.Baseline), c.SecPerGiB, c.PeakRSSMiB)
	}
	p("")
	if m := r.Memory; m != nil {
		p("Memory per open idle circuit, the relay being the first of two hops: %.0f B of resident memory and %.0f B of live heap per circuit (%d circuits; resident set %.1f → %.1f MiB).",
			m.RSSPerCircuit, m.HeapPerCircuit, m.Circuits, m.RSSBeforeMiB, m.RSSAfterMiB)
		p("")
	}
	if f := r.Flood; f != nil {
		p("**Flood.** A relay with the router's default limits, in a process of its own, under a flood from %d attacker peer%s, each trying to open %d idle one-hop circuits to it (4 at a time) and keeping all it gets: the attackers kept %d of %d (%.0f s); the relay held %d circuits and refused %d creates over a rate and %d over a cap. Its peak resident set during the flood was %.1f MiB (%.1f MiB before; the process also runs the idle hosts of the other scenarios). An honest client's builds through it took %.1f ms (median) before the flood and %.1f ms during it; %d of %d were built.",
			f.Peers, plural(f.Peers), f.Attempts, f.Accepted, f.Peers*f.Attempts, f.Took, f.RelayCircuits, f.RefusedCreates, f.RefusedCircuits,
			f.PeakRSSMiB, f.RSSBeforeMiB, f.QuietBuildMs, f.FloodBuildMs, f.HonestBuilt, f.HonestTried)
		p("")
	}
}

func docBaseline(b bool) string {
	if b {
		return " (baseline)"
	}
	return ""
}
