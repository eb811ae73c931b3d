package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"
)

// NetnsReport is what a namespace run measured; --out writes it as
// bench-netns.json.
type NetnsReport struct {
	Date     time.Time     `json:"date"`
	Hardware Hardware      `json:"hardware"`
	Settings NetnsSettings `json:"settings"`
	// RelaysKnown is how many relay descriptors the proxy held when the
	// measurements began.
	RelaysKnown int      `json:"relays_known"`
	TTFB        []Series `json:"ttfb"`
	// ProxyCircuits is how many circuits the proxy had open after the
	// first-byte samples.
	ProxyCircuits int            `json:"proxy_circuits_after_ttfb"`
	Bulk          []Throughput   `json:"bulk"`
	Memory        *NetnsMemory   `json:"memory"`
	Parallel      *NetnsParallel `json:"parallel,omitempty"`
	Forwarder     ForwarderStats `json:"forwarder"`
	// TCP is the kernel's TCP settings in the namespaces, which bound the
	// direct baseline.
	TCP string `json:"tcp"`
	// LoadAvg is the machine's load averages (1, 5, 15 min) at the start
	// and at the end of the run.
	LoadAvg [2]string     `json:"loadavg"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// NetnsSettings are the parameters a namespace run used.
type NetnsSettings struct {
	Quick   bool    `json:"quick"`
	Relays  int     `json:"relays"`
	Hops    int     `json:"hops"`
	DelayMs float64 `json:"delay_ms"` // one way, every link
	// PathRTTms is the emulated round trip from the client through the
	// circuit's hops to the server, and of the direct link.
	PathRTTms   float64 `json:"path_rtt_ms"`
	TTFBSamples int     `json:"ttfb_samples"`
	BulkBytes   int     `json:"bulk_bytes"`
	BulkRounds  int     `json:"bulk_rounds"`
	Parallel    int     `json:"parallel"`
}

// NetnsMemory is the peak resident set (VmHWM) of the obol processes
// over the single-circuit bulk transfers.
type NetnsMemory struct {
	ProxyPeakMiB  float64   `json:"proxy_peak_MiB"`
	RelayPeaksMiB []float64 `json:"relay_peaks_MiB"`
	// PathRelays are the relays that used the most CPU during the
	// transfers, as many as the path has hops: the circuit's.
	PathRelays         []int     `json:"path_relays"`
	PathRelayCPUs      []float64 `json:"path_relay_cpu_s"`
	PathRelayMedianMiB float64   `json:"path_relay_median_peak_MiB"`
	RelayMedianMiB     float64   `json:"relay_median_peak_MiB"`
	// ProxyFileMiB and PathRelayFileMiB (median) are the part of the
	// resident set that is file-backed (RssFile), read after the rounds:
	// the binary's pages, shared by every process of it.
	ProxyFileMiB     float64 `json:"proxy_file_MiB"`
	PathRelayFileMiB float64 `json:"path_relay_median_file_MiB"`
}

// NetnsParallel compares Circuits circuits fetching at once with one.
type NetnsParallel struct {
	Circuits   int       `json:"circuits"`
	BytesEach  int       `json:"bytes_each"`
	OneRounds  []float64 `json:"one_rounds_MBps"`
	ManyRounds []float64 `json:"many_rounds_MBps"`
	OneMBps    float64   `json:"one_MBps"`
	ManyMBps   float64   `json:"many_MBps"`
}

// ForwarderStats is what the TUN forwarder carried.
type ForwarderStats struct {
	Packets    uint64 `json:"packets"`
	Lost       uint64 `json:"lost"`       // a full link queue or a failed write
	Unroutable uint64 `json:"unroutable"` // not IPv4, or to no node (e.g. IPv6 router solicitations)
}

// WriteJSON writes the report to dir/bench-netns.json.
func (r *NetnsReport) WriteJSON(dir string) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "bench-netns.json")
	return p, os.WriteFile(p, append(b, '\n'), 0o644)
}

func (s NetnsSettings) String() string {
	q := ""
	if s.Quick {
		q = "; quick"
	}
	return fmt.Sprintf("%d relay processes, %d-hop circuits, %.0f ms one way per link, path RTT %.0f ms%s",
		s.Relays, s.Hops, s.DelayMs, s.PathRTTms, q)
}

// WriteTable prints the report as aligned tables for a terminal.
func (r *NetnsReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("obol bench --netns — %s", r.Date.Format(time.DateTime+" MST"))
	p("%s", r.Hardware)
	p("%s", r.Settings)
	p("")
	p("TIME TO FIRST BYTE (curl, 1 KiB answer)\tmedian ms\tp90 ms\tsamples")
	for _, s := range r.TTFB {
		p("  %s%s\t%.1f\t%.1f\t%d", s.Name, baselineMark(s.Baseline), s.Median, s.P90, len(s.Samples))
	}
	p("  path RTT (emulated)\t%.1f\t\t", r.Settings.PathRTTms)
	p("  circuits open at the proxy afterwards\t%d\t\t", r.ProxyCircuits)
	p("")
	p("BULK THROUGHPUT (curl, %s, first byte to last)\tMB/s\trounds\t", sizeString(r.Settings.BulkBytes))
	for _, t := range r.Bulk {
		p("  %s%s\t%.1f\t%d\t", t.Name, baselineMark(t.Baseline), t.MBps, len(t.Rounds))
	}
	if c, d := r.bulk(NetnsBulk), r.bulk(NetnsBulkTCP); c != nil && d != nil && d.MBps > 0 {
		p("  circuit / direct TCP\t%.0f%%\t\t", 100*c.MBps/d.MBps)
	}
	if c, d := r.bulk(NetnsBulk), r.bulk(NetnsBulkTCPWide); c != nil && d != nil && d.MBps > 0 {
		p("  circuit / direct TCP, wide send buffer\t%.0f%%\t\t", 100*c.MBps/d.MBps)
	}
	if pl := r.Parallel; pl != nil {
		p("  %d circuits at once, aggregate (%s each, wall time)\t%.1f\t%d\t", pl.Circuits, sizeString(pl.BytesEach), pl.ManyMBps, len(pl.ManyRounds))
		p("  1 circuit, same measure\t%.1f\t%d\t", pl.OneMBps, len(pl.OneRounds))
	}
	if m := r.Memory; m != nil {
		p("")
		p("PEAK RESIDENT MEMORY (VmHWM over the bulk transfers)\tMiB\t\t")
		p("  proxy\t%.1f\t\t", m.ProxyPeakMiB)
		p("  relays of the circuit, median\t%.1f\t\t", m.PathRelayMedianMiB)
		p("  all relays, median\t%.1f\t\t", m.RelayMedianMiB)
		p("  of which file-backed (the binary's pages), proxy / relays of the circuit\t%.1f / %.1f\t\t", m.ProxyFileMiB, m.PathRelayFileMiB)
	}
	p("")
	p("forwarder: %d packets, %d lost, %d unroutable; the proxy knew %d of %d relays\t\t\t", r.Forwarder.Packets,
		r.Forwarder.Lost, r.Forwarder.Unroutable, r.RelaysKnown, r.Settings.Relays)
	p("kernel TCP: %s\t\t\t", r.TCP)
	p("load average: %s at the start, %s at the end\t\t\t", r.LoadAvg[0], r.LoadAvg[1])
	p("(* baseline)  took %s", r.Elapsed.Round(time.Second))
	return tw.Flush()
}

func (r *NetnsReport) bulk(name string) *Throughput {
	for i := range r.Bulk {
		if r.Bulk[i].Name == name {
			return &r.Bulk[i]
		}
	}
	return nil
}
