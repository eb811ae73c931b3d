package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints the report as aligned tables for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("obol bench — %s", r.Date.Format(time.DateTime+" MST"))
	p("%s", r.Hardware)
	p("%s", r.Settings)
	p("")
	p("TIME TO FIRST BYTE (1 KiB answer)\tmedian ms\tp90 ms\tsamples")
	for _, s := range r.TTFB {
		p("  %s%s\t%.2f\t%.2f\t%d", s.Name, baselineMark(s.Baseline), s.Median, s.P90, len(s.Samples))
	}
	if pay := r.Payment; pay != nil && pay.Measured {
		p("  fresh circuit, unpaid (Build+Dial)\t%.2f\t\t", pay.UnpaidTTFB)
		p("  fresh circuit, paid (Build+Dial)\t%.2f\t\t", pay.PaidTTFB)
	}
	if !r.Hidden.Measured {
		p("  hidden service, cold and warm\tnot measured (see below)\t\t")
	}
	p("  path RTT (emulated)\t%.1f\t\t", r.PathRTTms)
	if r.Hidden.Measured {
		p("  hidden service joined RTT (emulated)\t%.1f\t\t", r.Hidden.JoinedRTTms)
	}
	p("")
	p("BULK THROUGHPUT (%s per stream)\tMB/s\trounds\t", sizeString(r.Settings.BulkBytes))
	for _, t := range r.Bulk {
		p("  %s%s\t%.1f\t%d\t", t.Name, baselineMark(t.Baseline), t.MBps, len(t.Rounds))
	}
	if pay := r.Payment; pay != nil && pay.Measured {
		p("  circuit ×1, unpaid (payment run)\t%.1f\t\t", pay.UnpaidMBps)
		p("  circuit ×1, paid (payment run)\t%.1f\t\t", pay.PaidMBps)
		p("  payment cells / data\t%.3f%%\t\t", 100*pay.PaymentShare)
		p("  relay pauses for payment\t%d\t\t", pay.Pauses)
	} else if pay != nil {
		p("  payment\t%s\t\t", pay.Note)
	}
	p("")
	p("CIRCUIT BUILD\tmedian ms\tp90 ms\tpath RTT ms")
	for _, bt := range r.Build {
		p("  %d hop%s\t%.2f\t%.2f\t%.0f", bt.Hops, plural(bt.Hops), bt.Median, bt.P90, bt.PathRTTms)
	}
	p("")
	p("RELAY RESOURCES (own process, loopback links)\t\t\t")
	for _, c := range r.CPU {
		p("  CPU, %s%s\t%.2f s/GiB\t(%s forwarded)\t", c.Name, baselineMark(c.Baseline), c.SecPerGiB, sizeString(int(c.Bytes)))
		p("  peak RSS of the process, %s%s\t%.1f MiB\t(during the transfer)\t", c.Name, baselineMark(c.Baseline), c.PeakRSSMiB)
	}
	if m := r.Memory; m != nil {
		p("  memory per idle circuit (RSS)\t%.0f B\t(%d circuits)\t", m.RSSPerCircuit, m.Circuits)
		p("  memory per idle circuit (live heap)\t%.0f B\t\t", m.HeapPerCircuit)
	}
	if f := r.Flood; f != nil {
		p("")
		p("FLOOD (relay with default limits, own process)\t\t\t")
		p("  attacker circuits kept\t%d of %d\t(%d peer%s, %.0f s)\t", f.Accepted, f.Peers*f.Attempts, f.Peers, plural(f.Peers), f.Took)
		p("  relay: circuits held, refused\t%d\t(%d over a rate, %d over a cap)\t", f.RelayCircuits, f.RefusedCreates, f.RefusedCircuits)
		p("  relay peak RSS during the flood\t%.1f MiB\t(%.1f MiB before)\t", f.PeakRSSMiB, f.RSSBeforeMiB)
		p("  honest build, quiet → flood\t%.1f → %.1f ms\t(%d of %d built)\t", f.QuietBuildMs, f.FloodBuildMs, f.HonestBuilt, f.HonestTried)
	}
	p("")
	p("TARGETS\tresult\tgot\twant")
	for _, t := range r.Targets {
		p("  %s\t%s\t%s\t%s", t.Name, t.verdict(), t.Got, t.Want)
	}
	p("")
	p("(* baseline)  took %s", r.Elapsed.Round(time.Second))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "hidden service: %s\n", r.Hidden.Note)
	return err
}

// verdict is PASS or FAIL, marked when the settings are not the target's.
func (t Target) verdict() string {
	v := "FAIL"
	if t.Pass {
		v = "PASS"
	}
	if !t.Applies {
		v += " (not at 10 ms/link)"
	}
	return v
}

func baselineMark(b bool) string {
	if b {
		return " *"
	}
	return ""
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// String describes the settings in one line.
func (s Settings) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "links: %s; path: %d hops", s.Link, s.Hops)
	if s.Quick {
		b.WriteString("; quick run")
	}
	return b.String()
}

func sizeString(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
