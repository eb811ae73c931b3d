package bench

import (
	"fmt"
	"time"
)

// targetDelay is the per-link one-way delay the targets are defined for.
const targetDelay = 10 * time.Millisecond

// targets holds the report's figures against the project's goals:
//
//   - a fresh circuit's first byte within 1.5 × the path's round trip
//     plus the server's time (direct TCP's first byte);
//   - one circuit's bulk throughput at least half the plain chain's;
//   - a paid circuit's bulk throughput at least 95% of an unpaid one's.
func targets(r *Report) []Target {
	applies := r.Settings.Link.Delay == targetDelay && r.Settings.Link.Loss == 0 && r.Settings.Link.Bandwidth == 0
	var ts []Target
	if fresh, direct := r.ttfb(TTFBBuildDial), r.ttfb(TTFBDirect); fresh != nil && direct != nil {
		limit := 1.5*r.PathRTTms + direct.Median
		ts = append(ts, Target{Name: "fresh-circuit first byte",
			Want:  fmt.Sprintf("≤ 1.5 × %.0f ms path RTT + %.2f ms server = %.1f ms", r.PathRTTms, direct.Median, limit),
			Got:   fmt.Sprintf("%.1f ms (median, BuildDial)", fresh.Median),
			Value: fresh.Median, Limit: limit, Pass: fresh.Median <= limit, Applies: applies})
	}
	if c, p := r.bulk(bulkName(BulkCircuit, 1)), r.bulk(bulkName(BulkChain, 1)); c != nil && p != nil && p.MBps > 0 {
		ratio := c.MBps / p.MBps
		ts = append(ts, Target{Name: "single-circuit bulk",
			Want:  "≥ 50% of the plain chain",
			Got:   fmt.Sprintf("%.0f%% (%.1f of %.1f MB/s)", 100*ratio, c.MBps, p.MBps),
			Value: ratio, Limit: 0.5, Pass: ratio >= 0.5, Applies: applies})
	}
	if p := r.Payment; p != nil && p.Measured {
		ts = append(ts, Target{Name: "paid bulk",
			Want:  "≥ 95% of unpaid",
			Got:   fmt.Sprintf("%.0f%% (%.1f of %.1f MB/s)", 100*p.Ratio, p.PaidMBps, p.UnpaidMBps),
			Value: p.Ratio, Limit: 0.95, Pass: p.Ratio >= 0.95, Applies: applies})
	}
	return ts
}
