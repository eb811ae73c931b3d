package soak

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/obolnet/obol/cmd/internal/bench"
)

// Report is what one soak measured; --out writes it as soak.json.
type Report struct {
	Date     time.Time      `json:"date"`
	Hardware bench.Hardware `json:"hardware"`
	Settings Settings       `json:"settings"`
	Dir      string         `json:"dir"`
	// TrafficSeconds is how long the traffic ran, requests in flight at
	// the end included.
	TrafficSeconds float64 `json:"traffic_s"`
	All            Counts  `json:"all"`
	Web            Counts  `json:"web"`
	Bulk           Counts  `json:"bulk"`
	// ClearOfChurn counts the requests during which no relay was stopped.
	ClearOfChurn      Counts  `json:"clear_of_churn"`
	RequestsPerSecond float64 `json:"requests_per_s"`
	// TTFB quantiles of completed requests, in ms.
	WebTTFB  Quantiles `json:"web_ttfb_ms"`
	BulkTTFB Quantiles `json:"bulk_ttfb_ms"`
	// BulkMBps is the bulk downloads' rate from first byte to last.
	BulkMBps Quantiles `json:"bulk_MBps"`
	// BytesMoved is the body bytes the clients received.
	BytesMoved int64 `json:"bytes_moved"`
	// Errors counts the failures by their message (numbers stripped).
	Errors map[string]int `json:"errors"`
	Churn  []ChurnEvent   `json:"churn"`
	// RelayPeakMiB is the peak resident set (VmHWM) over every relay run;
	// ClientPeakMiB over the proxies.
	RelayPeakMiB  Quantiles  `json:"relay_peak_rss_MiB"`
	ClientPeakMiB float64    `json:"client_peak_rss_MiB_max"`
	Settlement    Settlement `json:"settlement"`
	Requests      []Request  `json:"requests"`
	Elapsed       float64    `json:"elapsed_s"`
}

// Settings are the parameters of a run.
type Settings struct {
	Relays    int     `json:"relays"`
	Bootstrap int     `json:"bootstrap"`
	Clients   int     `json:"clients"`
	Duration  string  `json:"duration"`
	Churn     string  `json:"churn"`
	Traffic   Traffic `json:"traffic"`
	FundsSat  uint64  `json:"funds_sat_per_client"`
}

func (c *Config) settings() Settings {
	return Settings{Relays: c.Relays, Bootstrap: c.Bootstrap, Clients: c.Clients, Duration: c.Duration.String(),
		Churn: c.Churn.String(), Traffic: c.Traffic, FundsSat: c.Funds}
}

// Counts are requests and how many of them succeeded.
type Counts struct {
	Total int `json:"total"`
	OK    int `json:"ok"`
}

func (c *Counts) add(ok bool) {
	c.Total++
	if ok {
		c.OK++
	}
}

// Rate is the share that succeeded, 0 for none.
func (c Counts) Rate() float64 {
	if c.Total == 0 {
		return 0
	}
	return float64(c.OK) / float64(c.Total)
}

func (c Counts) String() string {
	return fmt.Sprintf("%.2f%% (%d of %d)", 100*c.Rate(), c.OK, c.Total)
}

// Quantiles of a distribution, nearest rank.
type Quantiles struct {
	N   int     `json:"n"`
	P10 float64 `json:"p10"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func quantiles(xs []float64) Quantiles {
	q := Quantiles{N: len(xs), P10: bench.Quantile(xs, 0.1), P50: bench.Quantile(xs, 0.5),
		P90: bench.Quantile(xs, 0.9), P99: bench.Quantile(xs, 0.99)}
	if len(xs) > 0 {
		q.Max = slices.Max(xs)
	}
	return q
}

// summarize computes the figures of the requests.
func (rep *Report) summarize(reqs []Request, churn []ChurnEvent, traffic time.Duration) {
	rep.Requests, rep.Churn, rep.TrafficSeconds = reqs, churn, traffic.Seconds()
	var kills []time.Time
	for _, e := range churn {
		if e.Relay != "" {
			kills = append(kills, e.At)
		}
	}
	var webTTFB, bulkTTFB, rates []float64
	rep.Errors = map[string]int{}
	for _, r := range reqs {
		rep.All.add(r.ok())
		rep.BytesMoved += int64(r.Got)
		if !slices.ContainsFunc(kills, func(k time.Time) bool { return !k.Before(r.Start) && !k.After(r.end()) }) {
			rep.ClearOfChurn.add(r.ok())
		}
		if !r.ok() {
			rep.Errors[errorClass(r.Err)]++
		}
		switch r.Kind {
		case "web":
			rep.Web.add(r.ok())
			if r.ok() {
				webTTFB = append(webTTFB, r.TTFBms)
			}
		case "bulk":
			rep.Bulk.add(r.ok())
			if r.ok() {
				bulkTTFB = append(bulkTTFB, r.TTFBms)
				rates = append(rates, r.MBps())
			}
		}
	}
	rep.WebTTFB, rep.BulkTTFB, rep.BulkMBps = quantiles(webTTFB), quantiles(bulkTTFB), quantiles(rates)
	if traffic > 0 {
		rep.RequestsPerSecond = float64(len(reqs)) / traffic.Seconds()
	}
}

// errorClass is an error message with its numbers and addresses blanked,
// so that like failures count together.
func errorClass(msg string) string {
	var b strings.Builder
	digit := false
	for _, r := range msg {
		if r >= '0' && r <= '9' {
			if !digit {
				b.WriteByte('N')
			}
			digit = true
			continue
		}
		digit = false
		b.WriteRune(r)
	}
	s := b.String()
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// memory collects the peak resident sets of every run.
func (rep *Report) memory(n *network) {
	var relays []float64
	for _, r := range n.snapshot() {
		for _, p := range r.runs {
			if k := p.peakKiB(); k > 0 {
				relays = append(relays, float64(k)/1024)
			}
		}
	}
	rep.RelayPeakMiB = quantiles(relays)
	for _, c := range n.clients {
		rep.ClientPeakMiB = max(rep.ClientPeakMiB, float64(c.p.peakKiB())/1024)
	}
}

// WriteJSON writes the report to dir/soak.json.
func (rep *Report) WriteJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "soak.json")
	return p, os.WriteFile(p, append(b, '\n'), 0o644)
}

// churnCounts counts the events by signal and action.
func (rep *Report) churnCounts() map[string]int {
	m := map[string]int{}
	for _, e := range rep.Churn {
		if e.Relay == "" || e.Err != "" {
			m["failed"]++
		}
		if e.Relay != "" {
			m[e.Signal+" + "+e.Action]++
		}
	}
	return m
}

// WriteTable prints the report for a terminal.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	s := rep.Settings
	p("obol soak — %s", rep.Date.Format(time.DateTime+" MST"))
	p("%s", rep.Hardware)
	p("%d relays (%d bootstrap, a third exits), %d clients × (%d web + %d bulk users), traffic %s, churn every %s",
		s.Relays, s.Bootstrap, s.Clients, s.Traffic.WebUsers, s.Traffic.BulkUsers, s.Duration, s.Churn)
	p("")
	p("REQUESTS\tsucceeded\t\t")
	p("  all\t%s\t\t", rep.All)
	p("  web (%s–%s)\t%s\t\t", size(s.Traffic.WebMin), size(s.Traffic.WebMax), rep.Web)
	p("  bulk (%s–%s)\t%s\t\t", size(s.Traffic.BulkMin), size(s.Traffic.BulkMax), rep.Bulk)
	p("  no relay stopped during the request\t%s\t\t", rep.ClearOfChurn)
	p("  requests/s\t%.2f\t\t", rep.RequestsPerSecond)
	p("  bytes received\t%.2f GB\t\t", float64(rep.BytesMoved)/1e9)
	p("")
	p("TIME TO FIRST BYTE (ms)\tp50\tp90\tp99")
	p("  web\t%.0f\t%.0f\t%.0f", rep.WebTTFB.P50, rep.WebTTFB.P90, rep.WebTTFB.P99)
	p("  bulk\t%.0f\t%.0f\t%.0f", rep.BulkTTFB.P50, rep.BulkTTFB.P90, rep.BulkTTFB.P99)
	p("BULK THROUGHPUT (MB/s)\tp10\tp50\tp90")
	p("  per download\t%.2f\t%.2f\t%.2f", rep.BulkMBps.P10, rep.BulkMBps.P50, rep.BulkMBps.P90)
	p("")
	p("CHURN\t%d events\t\t", len(rep.Churn))
	for _, k := range sortedKeys(rep.churnCounts()) {
		p("  %s\t%d\t\t", k, rep.churnCounts()[k])
	}
	p("PEAK RSS (MiB)\tp50\tp90\tmax")
	p("  relay runs (%d)\t%.1f\t%.1f\t%.1f", rep.RelayPeakMiB.N, rep.RelayPeakMiB.P50, rep.RelayPeakMiB.P90, rep.RelayPeakMiB.Max)
	p("  proxies\t\t\t%.1f", rep.ClientPeakMiB)
	if len(rep.Errors) > 0 {
		p("")
		p("FAILURES\tcount\t\t")
		for _, k := range sortedKeys(rep.Errors) {
			p("  %s\t%d\t\t", k, rep.Errors[k])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	st := rep.Settlement
	fmt.Fprintf(w, "\nSETTLEMENT\n  channels settled at relays: %d of %d (%d when the network stopped)\n", st.Settled, st.Channels, st.AtStop)
	fmt.Fprintf(w, "  relays started again to settle: %d (%d stopped at the end without reaching the mint; the others killed and replaced)\n",
		st.Revived, st.UnsettledAtStop)
	fmt.Fprintf(w, "  relays' wallets hold %d sat; their ledgers accepted %d sat; %d wallet operations pending\n", st.RelaysSat, st.EarnedSat, st.Pending)
	fmt.Fprintf(w, "  money %s\n", st.moneyLine())
	if st.Err != "" {
		fmt.Fprintf(w, "  errors: %s\n", st.Err)
	}
	_, err := fmt.Fprintf(w, "\ntook %s\n", time.Duration(rep.Elapsed*float64(time.Second)).Round(time.Second))
	return err
}

func (s Settlement) moneyLine() string {
	verdict := "OK"
	if !s.Balanced() {
		verdict = "LOST"
	}
	return fmt.Sprintf("%s: relays %d + wallets %d + refundable %d (%d channels) = %d of %d sat given; dust %d",
		verdict, s.RelaysSat, s.WalletsSat, s.LockedSat, s.ClientOpen, s.RelaysSat+s.WalletsSat+s.LockedSat, s.GivenSat, s.DustSat)
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
