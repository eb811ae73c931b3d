package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/internal/node"
)

// Config describes a simulated network and what is measured on it. The
// zero value of a field means the default named beside it.
type Config struct {
	Relays  int // relays at the start (default 10)
	Clients int // clients (default 2)
	// ExitFraction of the relays are exits (default 0.3); every relay is
	// a guard candidate, as `obol relay` publishes by default.
	ExitFraction float64
	// Regions and RTT are the geographic model (default DefaultRegions,
	// DefaultRTT in milliseconds).
	Regions []Region
	RTT     [][]int
	// RelayBandwidth draws relays' link rates and advertised bandwidths,
	// in bytes per second, log-uniformly between the two (default 1 MB/s
	// to 50 MB/s, Tor's middle range).
	RelayBandwidth [2]uint64
	// ClientBandwidth is every client's link rate in bytes per second
	// (default 2.5 MB/s, 20 Mbit/s).
	ClientBandwidth uint64

	// Lifetime and Republish are the relays' descriptor lifetime and
	// republish interval (defaults those of `obol relay`: 6 days, 30 min).
	Lifetime, Republish time.Duration
	// Discovery is how clients learn the relays: DiscoveryView (the
	// default, as obol does: relays gossip descriptors and serve their
	// view, clients take the union of three relays' views and relays
	// extend only within theirs) or DiscoverySample (the earlier
	// design: each client samples the DHT, relays look next hops up).
	Discovery string
	// Sample and Resample are the clients' sample size and resample
	// interval under DiscoverySample (defaults 200, 10 min).
	Sample   int
	Resample time.Duration

	// Observe is how long discovery runs, after every relay published
	// and every client joined, before traffic starts (default 1 h).
	// Discovery cost is measured over it.
	Observe time.Duration
	// Snapshots is how many times views are compared during Observe
	// (default 6).
	Snapshots int
	// ViewProbes is how many late clients measure the time to a
	// complete view (default 1); ViewTarget is the fraction of live
	// relays that counts as complete (default 0.99), ViewLimit the most
	// time a probe gets (default 1 h).
	ViewProbes int
	ViewTarget float64
	ViewLimit  time.Duration
	// Lookups is how many DHT lookups of random relays each client makes
	// (default 5); a client that takes views has them made by relays.
	Lookups int
	// Fetches is how many web fetches each client makes, each on a new
	// circuit (default 3), of FetchSize bytes (default 64 KiB).
	Fetches   int
	FetchSize int

	// SybilFraction of the relays are the adversary's: guards and exits
	// that claim SybilBandwidth (default 1 GB/s) of bandwidth.
	SybilFraction  float64
	SybilBandwidth uint64
	// SybilDelay, if set, holds the Sybils back until this long into
	// Observe (which must be longer): they join a network whose clients
	// already know the honest relays.
	SybilDelay time.Duration
	// MinGuardAge and MinExitAge are the clients' (client.Config); zero
	// waives the rule, as a local test network does, since every relay
	// of a simulated network is new to the clients.
	MinGuardAge, MinExitAge time.Duration
	// WithholdFraction is the share, among DHT servers, of adversarial
	// DHT nodes: they route queries but store and serve no record.
	WithholdFraction float64

	// Churn, per relay per hour during Observe: the rate of relays that
	// leave (close their connections), crash (fall silent) and, as a
	// fraction of the starting relays, of new relays that join.
	LeaveRate, CrashRate, JoinRate float64

	// RelayConns, if set, is the connection manager's high watermark of
	// every relay (the low one is half of it); zero keeps `obol relay`'s
	// (1,024 and 2,048), so that relays of a simulated network of a few
	// hundred stay connected to nearly all the others, as relays of a
	// network of thousands would not.
	RelayConns int

	Seed uint64 // randomness of placement, bandwidths and churn

	// Progress, if set, is told when each phase starts.
	Progress func(phase string)
}

// Discovery designs (Config.Discovery).
const (
	DiscoveryView   = "view"
	DiscoverySample = "sample"
)

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Relays == 0 {
		c.Relays = 10
	}
	if c.Clients == 0 {
		c.Clients = 2
	}
	if c.ExitFraction == 0 {
		c.ExitFraction = 0.3
	}
	if c.Regions == nil {
		c.Regions = DefaultRegions
	}
	if c.RTT == nil {
		c.RTT = DefaultRTT
	}
	if c.RelayBandwidth == [2]uint64{} {
		c.RelayBandwidth = [2]uint64{1_000_000, 50_000_000}
	}
	if c.ClientBandwidth == 0 {
		c.ClientBandwidth = 2_500_000
	}
	def(&c.Lifetime, node.DefaultLifetime)
	def(&c.Republish, 30*time.Minute)
	if c.Discovery == "" {
		c.Discovery = DiscoveryView
	}
	if c.Sample == 0 {
		c.Sample = 200
	}
	def(&c.Resample, 10*time.Minute)
	def(&c.Observe, time.Hour)
	if c.Snapshots == 0 {
		c.Snapshots = 6
	}
	if c.ViewProbes == 0 {
		c.ViewProbes = 1
	}
	if c.ViewTarget == 0 {
		c.ViewTarget = 0.99
	}
	def(&c.ViewLimit, time.Hour)
	if c.Lookups == 0 {
		c.Lookups = 5
	}
	if c.Fetches == 0 {
		c.Fetches = 3
	}
	if c.FetchSize == 0 {
		c.FetchSize = 64 << 10
	}
	if c.SybilBandwidth == 0 {
		c.SybilBandwidth = 1_000_000_000
	}
	return c
}

// Validate reports the first field that cannot work.
func (c Config) Validate() error {
	d := c.withDefaults()
	switch {
	case c.Relays < 0 || c.Clients < 0:
		return errors.New("sim: negative node count")
	case d.Relays < 4:
		return fmt.Errorf("sim: %d relays cannot make 3-hop paths with an exit", d.Relays)
	case d.Relays+d.Clients+d.ViewProbes > 20000:
		return errors.New("sim: more than 20000 nodes")
	case outside(c.ExitFraction) || outside(c.SybilFraction) || outside(c.WithholdFraction) || outside(c.ViewTarget):
		return errors.New("sim: a fraction is not between 0 and 1")
	case c.LeaveRate < 0 || c.CrashRate < 0 || c.JoinRate < 0:
		return errors.New("sim: negative churn rate")
	case c.SybilDelay < 0 || (c.SybilDelay > 0 && c.SybilDelay >= d.Observe):
		return fmt.Errorf("sim: Sybil delay %v is not within the observation (%v)", c.SybilDelay, d.Observe)
	case c.MinGuardAge < 0 || c.MinExitAge < 0:
		return errors.New("sim: negative relay age")
	case c.RelayConns < 0 || (c.RelayConns > 0 && c.RelayConns < 8):
		return fmt.Errorf("sim: relay connection watermark %d: want 0 (obol relay's) or at least 8", c.RelayConns)
	case len(d.RTT) != len(d.Regions):
		return errors.New("sim: RTT matrix does not match the regions")
	case d.RelayBandwidth[0] == 0 || d.RelayBandwidth[0] > d.RelayBandwidth[1]:
		return errors.New("sim: bad relay bandwidth range")
	case d.Republish > min(d.Lifetime/2, view.MaxRepublish):
		return fmt.Errorf("sim: republish interval %v over half the lifetime or over %v (relays take a relay not heard from for %v for gone)", d.Republish, view.MaxRepublish, view.Silent)
	case d.Discovery != DiscoveryView && d.Discovery != DiscoverySample:
		return fmt.Errorf("sim: unknown discovery %q (want %q or %q)", c.Discovery, DiscoveryView, DiscoverySample)
	}
	for _, row := range d.RTT {
		if len(row) != len(d.Regions) {
			return errors.New("sim: RTT matrix is not square")
		}
	}
	return nil
}

func outside(f float64) bool { return f < 0 || f > 1 }
