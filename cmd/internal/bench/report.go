package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Report is everything one run measured; it is what --out writes as
// JSON and what the table, the plots and the document are drawn from.
type Report struct {
	Date     time.Time `json:"date"`
	Hardware Hardware  `json:"hardware"`
	Settings Settings  `json:"settings"`
	// PathRTTms is the emulated round trip of the measured path (client to
	// exit; the exit reaches the server over plain loopback).
	PathRTTms float64       `json:"path_rtt_ms"`
	TTFB      []Series      `json:"ttfb"`
	Bulk      []Throughput  `json:"bulk"`
	Build     []BuildTime   `json:"build"`
	CPU       []CPUCost     `json:"relay_cpu"`
	Memory    *Memory       `json:"memory"`
	Flood     *Flood        `json:"flood"`
	Payment   *Payment      `json:"payment"`
	Hidden    *Hidden       `json:"hidden"`
	Targets   []Target      `json:"targets"`
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// Settings are the parameters a run used.
type Settings struct {
	Quick        bool `json:"quick"`
	Link         Link `json:"link"`
	Hops         int  `json:"hops"`
	TTFBSamples  int  `json:"ttfb_samples"`
	BulkBytes    int  `json:"bulk_bytes"`
	BulkRounds   int  `json:"bulk_rounds"`
	Parallel     int  `json:"parallel"`
	BuildSamples int  `json:"build_samples"`
	MaxHops      int  `json:"max_hops"`
	CPUBytes     int  `json:"cpu_bytes"`
	MemCircuits  int  `json:"mem_circuits"`
}

// Series is one time-to-first-byte scenario: every sample, in ms.
type Series struct {
	Name     string    `json:"name"`
	Baseline bool      `json:"baseline"`
	Samples  []float64 `json:"samples_ms"`
	Median   float64   `json:"median_ms"`
	P90      float64   `json:"p90_ms"`
}

func newSeries(name string, baseline bool, samples []float64) Series {
	return Series{Name: name, Baseline: baseline, Samples: samples,
		Median: quantile(samples, 0.5), P90: quantile(samples, 0.9)}
}

// Throughput is one bulk scenario: streams moving bytes in parallel.
type Throughput struct {
	Name     string    `json:"name"`
	Baseline bool      `json:"baseline"`
	Streams  int       `json:"streams"`
	Rounds   []float64 `json:"rounds_MBps"`
	MBps     float64   `json:"MBps"` // median of the rounds, 10^6 bytes per second
}

// BuildTime is the time to build a circuit of Hops hops.
type BuildTime struct {
	Hops      int     `json:"hops"`
	Median    float64 `json:"median_ms"`
	P90       float64 `json:"p90_ms"`
	PathRTTms float64 `json:"path_rtt_ms"` // the emulated round trip to the last hop
}

// CPUCost is a forwarding node's CPU time (user + system, from the
// kernel's accounting of its own process) per GiB it forwarded.
type CPUCost struct {
	Name       string  `json:"name"`
	Baseline   bool    `json:"baseline"`
	Bytes      int64   `json:"bytes"`
	CPUSeconds float64 `json:"cpu_s"`
	SecPerGiB  float64 `json:"cpu_s_per_GiB"`
	// PeakRSSMiB is the process's peak resident set during the transfer
	// (the relay child runs the relay and the plain chain's host both).
	PeakRSSMiB float64 `json:"peak_rss_MiB"`
}

// Memory is a relay's memory per open idle circuit, measured in a
// process of its own.
type Memory struct {
	Circuits        int     `json:"circuits"`
	RSSPerCircuit   float64 `json:"rss_B_per_circuit"`
	HeapPerCircuit  float64 `json:"heap_B_per_circuit"`
	RSSBeforeMiB    float64 `json:"rss_before_MiB"`
	RSSAfterMiB     float64 `json:"rss_after_MiB"`
	BuildsPerSecond float64 `json:"builds_per_s"`
}

// Payment compares paid circuits with unpaid ones in the same run.
type Payment struct {
	Measured bool   `json:"measured"`
	Note     string `json:"note,omitempty"`
	// Bytes is what each of the paid and the unpaid circuit moved, in
	// alternating transfers; the rates are over their total times.
	Bytes      int64   `json:"bytes"`
	UnpaidMBps float64 `json:"unpaid_MBps"`
	PaidMBps   float64 `json:"paid_MBps"`
	Ratio      float64 `json:"paid_over_unpaid"`
	// PaymentShare is payment cells (sent and answered) as a share of
	// the data moved.
	PaymentShare float64 `json:"payment_share"`
	Pauses       uint64  `json:"pauses"`
	UnpaidTTFB   float64 `json:"unpaid_ttfb_median_ms"`
	PaidTTFB     float64 `json:"paid_ttfb_median_ms"`
}

// Hidden is the hidden-service scenario, or why it was not measured.
type Hidden struct {
	Measured bool   `json:"measured"`
	Note     string `json:"note,omitempty"`
	// JoinedRTTms is the emulated round trip from the client through the
	// rendezvous point to the service.
	JoinedRTTms float64 `json:"joined_rtt_ms"`
}

// Target is one of the goals the figures are held against.
type Target struct {
	Name  string  `json:"name"`
	Want  string  `json:"want"`
	Got   string  `json:"got"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Pass  bool    `json:"pass"`
	// Applies is false when the run's settings are not the ones the target
	// is defined for (10 ms one-way per link); it is still computed.
	Applies bool `json:"applies"`
}

// WriteJSON writes the report to dir/bench.json.
func (r *Report) WriteJSON(dir string) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "bench.json")
	return p, os.WriteFile(p, append(b, '\n'), 0o644)
}

// ttfb returns the series called name, or nil.
func (r *Report) ttfb(name string) *Series {
	for i := range r.TTFB {
		if r.TTFB[i].Name == name {
			return &r.TTFB[i]
		}
	}
	return nil
}

// bulk returns the throughput called name, or nil.
func (r *Report) bulk(name string) *Throughput {
	for i := range r.Bulk {
		if r.Bulk[i].Name == name {
			return &r.Bulk[i]
		}
	}
	return nil
}

// quantile is the q-quantile of xs (nearest rank); 0 for none.
func quantile(xs []float64, q float64) float64 { return Quantile(xs, q) }

// Quantile is the q-quantile of xs by nearest rank, 0 for none; xs is
// left as it is. Other measuring commands report with it too.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
