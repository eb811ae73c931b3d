package bench

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"
)

// The namespace run's section of the performance document sits between
// these markers; a loopback run's WriteDoc keeps it, and a namespace run
// replaces only it.
const (
	netnsDocBegin = "<!-- obol bench --netns: begin -->"
	netnsDocEnd   = "<!-- obol bench --netns: end -->"
)

// WriteDocSection writes the report as its section of the Markdown
// document at path, replacing the section if the document has one and
// appending it otherwise; the rest of the document stays as it is.
func (r *NetnsReport) WriteDocSection(path string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var sec bytes.Buffer
	r.writeDoc(&sec)
	before, after := splitNetnsSection(string(old))
	if before != "" && !strings.HasSuffix(before, "\n\n") {
		before = strings.TrimRight(before, "\n") + "\n\n"
	}
	return os.WriteFile(path, []byte(before+sec.String()+after), 0o644)
}

// splitNetnsSection returns doc without its namespace section: what
// comes before the section (all of doc if it has none) and after it.
func splitNetnsSection(doc string) (before, after string) {
	i := strings.Index(doc, netnsDocBegin)
	if i < 0 {
		return doc, ""
	}
	j := strings.Index(doc[i:], netnsDocEnd)
	if j < 0 {
		return doc[:i], ""
	}
	return doc[:i], strings.TrimPrefix(doc[i+j+len(netnsDocEnd):], "\n")
}

// netnsSection returns doc's namespace section with its markers, or "".
func netnsSection(doc string) string {
	before, after := splitNetnsSection(doc)
	if len(before)+len(after) == len(doc) {
		return ""
	}
	return strings.TrimRight(doc[len(before):len(doc)-len(after)], "\n") + "\n"
}

func (r *NetnsReport) writeDoc(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	st := r.Settings
	p("%s", netnsDocBegin)
	p("## Through processes, in network namespaces")
	p("")
	p("This section is written by `obol bench%s --doc docs/performance.md` (as root); run it again to regenerate it. It is one run, on a machine whose %d cores other work shared.", r.flagsLine(), r.Hardware.Cores)
	p("")
	p("- **Date:** %s", r.Date.Format(time.DateOnly+" 15:04 MST"))
	p("- **Hardware:** %s", r.Hardware)
	p("- **Settings:** %s; %d first-byte samples per scenario; bulk %s, %d round(s). The run took %s.",
		st, st.TTFBSamples, sizeString(st.BulkBytes), st.BulkRounds, r.Elapsed.Round(time.Second))
	p("- **Load average** (1, 5, 15 min): %s at the start, %s at the end.", r.LoadAvg[0], r.LoadAvg[1])
	p("")
	p("Every node runs in a network namespace of its own: %d `obol relay` processes (each a guard and an exit), one `obol proxy` (no prebuilt circuits, so a new SOCKS user name — a new isolation key — builds a circuit on demand) with curl beside it, and an HTTP server. Each namespace's only way out is a TUN device whose other end a user-space forwarder in the bench's process holds: it reads each IPv4 packet and writes it to the destination's device after the link's one-way delay, constant per link and in order, so TCP's slow start and QUIC's congestion control see a real round trip; DHT traffic takes the same links. Every link delays by %.0f ms one way; a circuit's path (client, %d relays, server) has an emulated round trip of %.0f ms, and the direct baseline's link from client to server delays by that whole path's %.0f ms one way. Nothing is routed beyond the namespaces. The forwarder and the HTTP server run in the bench's own process; every process, curl included, shares the machine's cores.",
		st.Relays, st.DelayMs, st.Hops, st.PathRTTms, st.PathRTTms/2)
	p("")
	p("Time to first byte is curl's `time_starttransfer` for a 1 KiB answer, SOCKS handshake included; fresh, existing and direct samples alternate. The HTTP server takes TCP Fast Open (RFC 7413) on one port, which exits ask for, and not on another: from the first, an exit that holds the server's cookie sends the request in its SYN, and the exit's handshake with the server leaves the path; the second shows a server that does not take it (direct curl does not ask for it). When the measurements began the proxy held the descriptors of %d of the %d relays; after the first-byte samples it had %d circuits open.", r.RelaysKnown, st.Relays, r.ProxyCircuits)
	p("")
	p("| scenario | median ms | p90 ms | samples |")
	p("|---|---:|---:|---:|")
	for _, s := range r.TTFB {
		p("| %s%s | %.1f | %.1f | %d |", s.Name, docBaseline(s.Baseline), s.Median, s.P90, len(s.Samples))
	}
	p("")
	p("Bulk is curl fetching %s, its rate from the first byte to the last, circuit and direct rounds alternating; medians of the rounds, in 10⁶ bytes per second.", sizeString(st.BulkBytes))
	p("")
	p("| scenario | MB/s | rounds |")
	p("|---|---:|---|")
	for _, t := range r.Bulk {
		p("| %s%s | %.1f | %s |", t.Name, docBaseline(t.Baseline), t.MBps, roundsString(t.Rounds))
	}
	c, d, w := r.bulk(NetnsBulk), r.bulk(NetnsBulkTCP), r.bulk(NetnsBulkTCPWide)
	if c != nil && d != nil && d.MBps > 0 {
		p("")
		p("The circuit carried %.0f%% of direct TCP's rate over the same path delay, with the kernel's TCP settings in the namespaces (%s).", 100*c.MBps/d.MBps, r.TCP)
		if w != nil && w.MBps > 0 {
			p("The second baseline lets the server's send buffer grow to %s (`net.ipv4.tcp_wmem` in its namespace, set for those rounds only), since a socket's send buffer bounds what TCP keeps in flight on a long path. Against it the circuit carried %.0f%%.", sizeString(wideSendBuffer), 100*c.MBps/w.MBps)
		}
	}
	if pl := r.Parallel; pl != nil {
		p("")
		p("**Parallel circuits.** %d curls at once, each on a circuit of its own (its own user name) fetching %s, against one such curl, rounds alternating, each timed from the first curl's start to the last one's end: %.1f MB/s aggregate against %.1f MB/s (%.2f×).",
			pl.Circuits, sizeString(pl.BytesEach), pl.ManyMBps, pl.OneMBps, pl.ManyMBps/max(pl.OneMBps, 1e-9))
	}
	if m := r.Memory; m != nil {
		p("")
		p("**Memory.** Peak resident set (VmHWM, reset before the single-circuit bulk rounds and read after them): the proxy %.1f MiB; the relays of the circuit (the %d that used the most CPU over the transfers) %.1f MiB median; all relays %.1f MiB median. Of the resident set, %.1f MiB of the proxy's and %.1f MiB of the circuit's relays' (median) were file-backed after the rounds (RssFile): the pages of the obol binary, which every process running it shares.",
			m.ProxyPeakMiB, st.Hops, m.PathRelayMedianMiB, m.RelayMedianMiB, m.ProxyFileMiB, m.PathRelayFileMiB)
	}
	p("")
	p("The forwarder carried %d packets and lost %d; %d were not routable (not IPv4, or to no node).", r.Forwarder.Packets, r.Forwarder.Lost, r.Forwarder.Unroutable)
	p("%s", netnsDocEnd)
}

// roundsString lists the rounds' rates.
func roundsString(rounds []float64) string {
	s := make([]string, len(rounds))
	for i, x := range rounds {
		s[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(s, ", ")
}

// flagsLine is the command line flags that reproduce the run's settings.
func (r *NetnsReport) flagsLine() string {
	st := r.Settings
	base := Defaults()
	s := " --netns"
	if st.Quick {
		base = QuickDefaults()
		s += " --quick"
	}
	nc := NetnsFromConfig(base, "")
	b := nc.settings()
	flag := func(name string, differs bool, v any) {
		if differs {
			s += fmt.Sprintf(" --%s %v", name, v)
		}
	}
	flag("relays", st.Relays != b.Relays, st.Relays)
	flag("delay", st.DelayMs != b.DelayMs, time.Duration(st.DelayMs*float64(time.Millisecond)))
	flag("hops", st.Hops != b.Hops, st.Hops)
	flag("samples", st.TTFBSamples != b.TTFBSamples, st.TTFBSamples)
	flag("bulk", st.BulkBytes != b.BulkBytes, strings.ReplaceAll(sizeString(st.BulkBytes), " ", ""))
	flag("rounds", st.BulkRounds != b.BulkRounds, st.BulkRounds)
	flag("parallel", st.Parallel != b.Parallel, st.Parallel)
	return s
}
