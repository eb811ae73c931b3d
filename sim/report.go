package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// Report is what a run measured. Times are virtual: simulated seconds,
// whatever the machine's speed.
type Report struct {
	Config ReportConfig `json:"config"`

	// Startup: how long relays took to join and publish, and clients to
	// join and take their first sample.
	ClientJoin Dist `json:"client_join"`

	// Views over the observation period, and the time a new client
	// needs, sampling back to back, to know ViewTarget of the live
	// relays (-1: not within ViewLimit).
	Views          []ViewSnapshot `json:"views"`
	ViewProbes     []ViewProbe    `json:"view_probes"`
	TimeToComplete Dist           `json:"time_to_complete"`

	// Discovery cost over the observation period, bytes on the simulated
	// links (QUIC included), sent plus received.
	RelayBytesPerHour float64 `json:"relay_bytes_per_hour"`
	ClientBytesPerDay float64 `json:"client_bytes_per_day"`
	// TorRelayBytesPerHour and TorClientBytesPerDay are Tor's directory
	// cost for as many relays, by the model in docs/scale.md.
	TorRelayBytesPerHour float64 `json:"tor_relay_bytes_per_hour"`
	TorClientBytesPerDay float64 `json:"tor_client_bytes_per_day"`

	// ClientExposure is how many relays saw each client's address: had
	// a connection with it at some time during the run.
	ClientExposure Exposure `json:"client_exposure"`

	Lookups       Dist    `json:"lookups"`
	LookupSuccess float64 `json:"lookup_success"`

	// Circuits: the time to a connected stream on a new circuit (build
	// and BEGIN in one flight), the fetch that follows, and success.
	Dial         Dist    `json:"dial"`
	Fetch        Dist    `json:"fetch"`
	FetchSuccess float64 `json:"fetch_success"`

	Adversary Adversary `json:"adversary"`

	// AnonymitySet is the mean share of clients whose view could have
	// produced an observed path (1 with a complete view), and with the
	// guard also in their guard set.
	Paths                int     `json:"paths"`
	AnonymitySet         float64 `json:"anonymity_set"`
	AnonymitySetGuard    float64 `json:"anonymity_set_guard"`
	AnonymitySetMinShare float64 `json:"anonymity_set_min"`

	Churn ChurnCount `json:"churn"`

	// Cost of the simulation itself.
	Nodes int `json:"nodes"`
	// RelayConns are the connections a relay held, mean and most, when
	// the clients had joined (the first figure) and at the end.
	RelayConnsMean [2]float64 `json:"relay_conns_mean"`
	RelayConnsMax  [2]int     `json:"relay_conns_max"`
	HeapPerNode    float64    `json:"heap_bytes_per_node"`
	PeakSysBytes   uint64     `json:"peak_sys_bytes"`
	WallSeconds    float64    `json:"wall_seconds,omitempty"`

	samples struct{ lookups, dials, fetches []time.Duration } // for the plots
}

// Exposure is how many peers a client connected with (its view's
// sources, its guards, and its DHT node's peers when it runs one: relays
// and withholding DHT nodes), out of Relays, every relay the run
// started.
type Exposure struct {
	Mean   float64 `json:"mean"`
	Max    int     `json:"max"`
	Relays int     `json:"relays"`
	// ConnectedAtEnd is how many peers a client is connected to at the
	// end of the run, on average: those that still see it online.
	ConnectedAtEnd float64 `json:"connected_at_end"`
	// BootstrapSources is the share of the clients' view sources, in
	// their last round, that are bootstrap relays.
	BootstrapSources float64 `json:"bootstrap_sources"`
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ReportConfig is the part of the configuration a reader needs.
type ReportConfig struct {
	Discovery               string
	Relays, Clients, Sample int
	Observe                 string
	SybilFraction           float64
	SybilDelay              string `json:",omitempty"` // Sybils joined this far into the observation
	MinGuardAge, MinExitAge string `json:",omitempty"` // the clients' (none: waived)
	WithholdFraction        float64
	LeaveRate, CrashRate    float64
	JoinRate                float64
	Seed                    uint64
}

// ViewProbe is one new client's way to a complete view.
type ViewProbe struct {
	Seconds      float64 `json:"seconds"` // -1: not reached
	Completeness float64 `json:"completeness"`
	Bytes        int64   `json:"bytes"`
	Samples      int     `json:"samples"`
}

// Adversary is the Sybils' share of what honest clients chose.
type Adversary struct {
	Relays     int     `json:"relays"`
	RelayShare float64 `json:"relay_share"`
	// ExitRelayShare is the Sybils' share of the relays with the exit
	// role: what they hold of exits once their claims buy no more.
	ExitRelayShare float64 `json:"exit_relay_share"`
	GuardShare     float64 `json:"guard_share"`  // of all clients' guard slots
	ExitShare      float64 `json:"exit_share"`   // of built circuits' exits
	PathShare      float64 `json:"path_share"`   // circuits with any Sybil hop
	EndToEnd       float64 `json:"end_to_end"`   // Sybil guard and Sybil exit
	ClientsSeen    float64 `json:"clients_seen"` // clients with a Sybil guard
}

// ChurnCount is what churn did.
type ChurnCount struct {
	Joined, Left, Crashed int
}

// WriteJSON writes r to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Print writes r as a table.
func (r *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	c := r.Config
	disc := "discovery by views"
	if c.Discovery == DiscoverySample {
		disc = fmt.Sprintf("discovery by samples of %d", c.Sample)
	}
	row("network", "%d relays, %d clients, %s, observed %s", c.Relays, c.Clients, disc, c.Observe)
	row("adversary", "Sybils %.0f%%, withholding DHT nodes %.0f%%", 100*c.SybilFraction, 100*c.WithholdFraction)
	if c.SybilDelay != "" || c.MinGuardAge != "" || c.MinExitAge != "" {
		row("late Sybils, relay ages", "Sybils join after %s; guard age %s, exit age %s",
			orNone(c.SybilDelay), orNone(c.MinGuardAge), orNone(c.MinExitAge))
	}
	row("churn per relay-hour", "leave %.2f, crash %.2f, join %.2f → %d left, %d crashed, %d joined",
		c.LeaveRate, c.CrashRate, c.JoinRate, r.Churn.Left, r.Churn.Crashed, r.Churn.Joined)
	row("client join + first sample", "p50 %s  p95 %s", sec(r.ClientJoin.P50), sec(r.ClientJoin.P95))
	for _, v := range r.Views {
		row(fmt.Sprintf("view at %.1f min", v.AtMinutes), "complete %.3f (min %.3f), stale %.3f, agreement %.3f, %d live",
			v.Completeness, v.CompletenessMin, v.Stale, v.Agreement, v.Live)
	}
	for i, p := range r.ViewProbes {
		when := "not reached"
		if p.Seconds >= 0 {
			when = fmt.Sprintf("%.0f s", p.Seconds)
		}
		row(fmt.Sprintf("new client %d to complete view", i), "%s (%.3f after %d rounds, %s)", when, p.Completeness, p.Samples, size(float64(p.Bytes)))
	}
	row("discovery, per relay-hour", "%s (Tor's directory: %s)", size(r.RelayBytesPerHour), size(r.TorRelayBytesPerHour))
	row("discovery, per client-day", "%s (Tor's directory: %s)", size(r.ClientBytesPerDay), size(r.TorClientBytesPerDay))
	e := r.ClientExposure
	row("peers that saw a client", "mean %.1f, max %d (%d relays); connected at the end %.1f; view sources that are bootstrap relays %.3f",
		e.Mean, e.Max, e.Relays, e.ConnectedAtEnd, e.BootstrapSources)
	row("DHT lookup", "p50 %s  p95 %s  success %.3f (n=%d)", sec(r.Lookups.P50), sec(r.Lookups.P95), r.LookupSuccess, r.Lookups.N)
	row("circuit + stream", "p50 %s  p95 %s  (n=%d)", sec(r.Dial.P50), sec(r.Dial.P95), r.Dial.N)
	row("fetch", "p50 %s  p95 %s  success %.3f", sec(r.Fetch.P50), sec(r.Fetch.P95), r.FetchSuccess)
	a := r.Adversary
	row("Sybil share", "relays %.3f (of exit relays %.3f), guards %.3f, exits %.3f, paths %.3f, guard+exit %.3f, clients with a Sybil guard %.3f",
		a.RelayShare, a.ExitRelayShare, a.GuardShare, a.ExitShare, a.PathShare, a.EndToEnd, a.ClientsSeen)
	row("anonymity set (share of clients)", "by view %.3f (least %.3f), by view and guard %.3f, over %d paths",
		r.AnonymitySet, r.AnonymitySetMinShare, r.AnonymitySetGuard, r.Paths)
	row("simulation", "%d nodes, %s heap per node, peak %s, %.0f s wall", r.Nodes, size(r.HeapPerNode), size(float64(r.PeakSysBytes)), r.WallSeconds)
	row("connections per relay", "mean %.0f (most %d) after joining, %.0f (%d) at the end", r.RelayConnsMean[0], r.RelayConnsMax[0], r.RelayConnsMean[1], r.RelayConnsMax[1])
	tw.Flush()
}

func sec(ms float64) string { return fmt.Sprintf("%.2fs", ms/1000) }

func size(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
