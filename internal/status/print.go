package status

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Print writes s for a terminal: the same sections as the page.
func Print(w io.Writer, s Snapshot) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	n, t, d := s.Node, s.Traffic, s.DHT
	fmt.Fprintf(tw, "obol %s %s\n", n.Kind, n.PeerID)
	if n.Roles != "" {
		fmt.Fprintf(tw, "roles\t%s\n", n.Roles)
	}
	fmt.Fprintf(tw, "up\t%s\n", Age(n.Now.Sub(n.Started)))
	fmt.Fprintf(tw, "circuits open\t%d\n", t.CircuitsOpen)
	fmt.Fprintf(tw, "streams open\t%d\n", t.StreamsOpen)
	fmt.Fprintf(tw, "link channels\t%d\n", t.Channels)
	fmt.Fprintf(tw, "cells\t%d (%s)\n", t.Cells, Bytes(float64(t.Bytes)))
	if len(s.Throughput) > 0 {
		fmt.Fprintf(tw, "throughput\t%s/s now, %s/s peak\n", Bytes(s.Throughput[len(s.Throughput)-1].BytesPerSec), Bytes(peak(s.Throughput)))
	}
	if n.Kind == KindRelay {
		fmt.Fprintf(tw, "DHT\t%d peers in the routing table, %d relays known, %d lookups (%d failed)\n", d.RoutingTable, d.KnownRelays, d.Lookups, d.LookupFailures)
	} else { // a client takes its view from relays and joins no DHT
		fmt.Fprintf(tw, "relays known\t%d\n", d.KnownRelays)
	}
	if d.Own != nil {
		fmt.Fprintf(tw, "own descriptor\tseq %d, expires %s\n", d.Own.Seq, d.Own.Expires.UTC().Format(time.RFC3339))
	}
	if b := s.Builds; b != nil && b.Count+b.TimedOut > 0 {
		fmt.Fprintf(tw, "circuit builds\t%d, median %s, %d timed out\n", b.Count, b.median(), b.TimedOut)
	}
	printPayments(tw, s.Payments)
	tw.Flush()
	printCircuits(w, s)
	printKnownRelays(w, s)
	printErrors(w, s.Errors)
}

func printPayments(w io.Writer, p *Payments) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "payments\tearned %d msat, settled %d msat, spent %d msat, %d circuits paused\n", p.EarnedMsat, p.SettledMsat, p.SpentMsat, p.Paused)
	for _, k := range slices.Sorted(maps.Keys(p.Channels)) {
		fmt.Fprintf(w, "channels %s\t%d\n", k, p.Channels[k])
	}
}

func printCircuits(w io.Writer, s Snapshot) {
	fmt.Fprintf(w, "\ncircuits (%d)\n", len(s.Circuits))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	if s.Node.Kind == KindRelay {
		fmt.Fprintln(tw, "  PREVIOUS HOP\tNEXT HOP")
		for _, c := range s.Circuits {
			fmt.Fprintf(tw, "  %s\t%s\n", c.Prev, orDash(c.Next, "(last hop)"))
		}
		return
	}
	fmt.Fprintln(tw, "  PATH\tSTREAMS")
	for _, c := range s.Circuits {
		fmt.Fprintf(tw, "  %s\t%d\n", strings.Join(c.Path, " -> "), c.Streams)
	}
}

func printKnownRelays(w io.Writer, s Snapshot) {
	fmt.Fprintf(w, "\nrelays known (%d)\n", len(s.Relays))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "  PEER ID\tROLES\tBANDWIDTH\tPRICE\tAGE")
	for _, r := range s.Relays {
		price := "free"
		if r.PerMiB != 0 || r.PerCircuit != 0 {
			price = fmt.Sprintf("%d msat/MiB + %d msat/circuit", r.PerMiB, r.PerCircuit)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s/s\t%s\t%s\n", r.PeerID, r.Roles, Bytes(float64(r.Bandwidth)), price, Age(s.Node.Now.Sub(r.Published)))
	}
}

func printErrors(w io.Writer, errs map[string]uint64) {
	if len(errs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nwarnings and errors\n")
	kinds := slices.Collect(maps.Keys(errs))
	sort.Slice(kinds, func(i, j int) bool { return errs[kinds[i]] > errs[kinds[j]] })
	for _, k := range kinds {
		fmt.Fprintf(w, "  %6d  %s\n", errs[k], k)
	}
}

func peak(ss []Sample) float64 {
	var m float64
	for _, s := range ss {
		m = max(m, s.BytesPerSec)
	}
	return m
}

func orDash(s, dash string) string {
	if s == "" {
		return dash
	}
	return s
}

// Bytes formats a byte count in binary units, e.g. "1.5 MiB".
func Bytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

// Age rounds d to the second; negative (clock skew) shows as 0s.
func Age(d time.Duration) string {
	return max(d, 0).Round(time.Second).String()
}

// median is the bucket of the median build: "≤ 100 ms", or "> 12800 ms".
func (b *BuildTimes) median() string {
	if b.Count == 0 || len(b.Counts) != len(b.BoundsMs)+1 {
		return "-"
	}
	var seen uint64
	for i, n := range b.Counts {
		if seen += n; 2*seen >= b.Count {
			if i == len(b.BoundsMs) {
				return fmt.Sprintf("> %g ms", b.BoundsMs[i-1])
			}
			return fmt.Sprintf("≤ %g ms", b.BoundsMs[i])
		}
	}
	return "-"
}
