package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/obolnet/obol/descriptor"
)

// printRelays prints one line per relay, sorted by peer ID: peer ID,
// roles, price, bandwidth and age (now − publish time).
func printRelays(w io.Writer, relays []*descriptor.Relay, now time.Time) {
	sorted := append([]*descriptor.Relay(nil), relays...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].PeerID < sorted[j].PeerID })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER ID\tROLES\tPRICE\tBANDWIDTH\tAGE")
	for _, r := range sorted {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.PeerID, r.Roles, formatPrice(r.Price), formatBandwidth(r.Bandwidth), formatAge(now.Sub(r.PublishedAt())))
	}
	tw.Flush()
}

// formatPrice is "free" or e.g. "5 msat/MiB + 100 msat/circuit".
func formatPrice(p descriptor.Price) string {
	if p.PerMiB == 0 && p.PerCircuit == 0 {
		return "free"
	}
	return fmt.Sprintf("%d msat/MiB + %d msat/circuit", p.PerMiB, p.PerCircuit)
}

// formatBandwidth is bytes per second in binary units, e.g. "1.0 MiB/s".
func formatBandwidth(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B/s", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB/s", float64(b)/float64(div), "KMGTP"[exp])
}

// formatAge rounds to the second; a publish time ahead of our clock (skew)
// shows as 0s.
func formatAge(d time.Duration) string {
	return max(d, 0).Round(time.Second).String()
}
