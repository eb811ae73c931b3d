// Package metrics exports a node's figures to Prometheus. Each node has
// its own registry (never the global one), filled on every scrape from the
// node's status.Source, so the numbers on /metrics and on the status page
// are the same numbers. Only cmd imports it.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/obolnet/obol/internal/status"
)

// Namespace prefixes every metric name.
const Namespace = "obol"

// scrapeTimeout bounds how long one scrape waits for a snapshot.
const scrapeTimeout = 5 * time.Second

// NewRegistry returns a registry holding the node's metrics, taken from
// src at every scrape, and the Go runtime and process collectors.
func NewRegistry(src status.Source) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus text format at any path.
func Handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/metrics", http.StatusFound)
	})
	return mux
}

// metric describes one exported figure.
type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(s *status.Snapshot) float64
}

func newMetric(name, help string, kind prometheus.ValueType, value func(s *status.Snapshot) float64) metric {
	return metric{prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, nil, nil), kind, value}
}

// collector turns a snapshot into metrics.
type collector struct {
	src     status.Source
	plain   []metric
	info    *prometheus.Desc
	chans   *prometheus.Desc
	errs    *prometheus.Desc
	hasPays *prometheus.Desc
	paused  *prometheus.Desc
	builds  *prometheus.Desc
	timeout *prometheus.Desc
}

func newCollector(src status.Source) *collector {
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	return &collector{
		src: src,
		plain: []metric{
			newMetric("circuits_open", "Circuits open.", g, func(s *status.Snapshot) float64 { return float64(s.Traffic.CircuitsOpen) }),
			newMetric("streams_open", "Streams open (exit streams for a relay).", g, func(s *status.Snapshot) float64 { return float64(s.Traffic.StreamsOpen) }),
			newMetric("link_channels", "Link channels open to other nodes.", g, func(s *status.Snapshot) float64 { return float64(s.Traffic.Channels) }),
			newMetric("cells_forwarded_total", "Cells forwarded to another hop (relay).", c, func(s *status.Snapshot) float64 { return float64(s.Traffic.Cells) }),
			newMetric("bytes_forwarded_total", "Link bytes of the cells counted by obol_cells_forwarded_total (relay); bytes carried by the streams (client).", c, func(s *status.Snapshot) float64 { return float64(s.Traffic.Bytes) }),
			newMetric("dht_routing_table_peers", "Peers in the DHT routing table (relay; a client runs no DHT node).", g, func(s *status.Snapshot) float64 { return float64(s.DHT.RoutingTable) }),
			newMetric("dht_known_relays", "Unexpired relay descriptors the node knows.", g, func(s *status.Snapshot) float64 { return float64(s.DHT.KnownRelays) }),
			newMetric("dht_lookups_total", "DHT lookups and samples the node made.", c, func(s *status.Snapshot) float64 { return float64(s.DHT.Lookups) }),
			newMetric("dht_lookup_failures_total", "DHT lookups and samples that failed.", c, func(s *status.Snapshot) float64 { return float64(s.DHT.LookupFailures) }),
			newMetric("dht_own_descriptor_seq", "Sequence number of the relay's own descriptor as last found in the DHT (0: not found yet).", g, ownSeq),
			newMetric("dht_own_descriptor_expiry_seconds", "Unix time at which the relay's own descriptor found in the DHT expires (0: not found yet).", g, ownExpiry),
		},
		info:    prometheus.NewDesc(Namespace+"_node_info", "Constant 1, labelled with the node's kind and roles.", []string{"kind", "roles"}, nil),
		chans:   prometheus.NewDesc(Namespace+"_payment_channels", "Payment channels by state.", []string{"state"}, nil),
		errs:    prometheus.NewDesc(Namespace+"_errors_total", "Warnings and errors by kind (the log message).", []string{"kind"}, nil),
		paused:  prometheus.NewDesc(Namespace+"_payment_paused_circuits_total", "Circuits paused for want of credit.", nil, nil),
		builds:  prometheus.NewDesc(Namespace+"_circuit_build_seconds", "Time from a circuit's CREATE to its CREATED, for the circuits the client built (client).", nil, nil),
		timeout: prometheus.NewDesc(Namespace+"_circuit_build_timeouts_total", "Circuit builds given up at the build timeout (client).", nil, nil),
		hasPays: prometheus.NewDesc(Namespace+"_payments_msat_total", "Payments in msat: earned (credited by channel updates), settled (redeemed or reclaimed at the mint), spent (paid to relays).", []string{"direction"}, nil),
	}
}

func ownSeq(s *status.Snapshot) float64 {
	if s.DHT.Own == nil {
		return 0
	}
	return float64(s.DHT.Own.Seq)
}

func ownExpiry(s *status.Snapshot) float64 {
	if s.DHT.Own == nil {
		return 0
	}
	return float64(s.DHT.Own.Expires.Unix())
}

// Describe sends every fixed description; labelled ones vary by scrape.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.plain {
		ch <- m.desc
	}
	ch <- c.info
	ch <- c.chans
	ch <- c.errs
	ch <- c.hasPays
	ch <- c.paused
	ch <- c.builds
	ch <- c.timeout
}

// Collect takes one snapshot and reports it.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	s := c.src.Snapshot(ctx)
	for _, m := range c.plain {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&s))
	}
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, s.Node.Kind, s.Node.Roles)
	for kind, n := range s.Errors {
		ch <- prometheus.MustNewConstMetric(c.errs, prometheus.CounterValue, float64(n), kind)
	}
	c.collectPayments(ch, s.Payments)
	c.collectBuilds(ch, s.Builds)
}

// collectBuilds reports the build-time histogram as a Prometheus one
// (cumulative buckets, in seconds).
func (c *collector) collectBuilds(ch chan<- prometheus.Metric, b *status.BuildTimes) {
	if b == nil || len(b.Counts) != len(b.BoundsMs)+1 {
		return
	}
	buckets := make(map[float64]uint64, len(b.BoundsMs))
	var cum uint64
	for i, ms := range b.BoundsMs {
		cum += b.Counts[i]
		buckets[ms/1000] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.builds, b.Count, b.SumMs/1000, buckets)
	ch <- prometheus.MustNewConstMetric(c.timeout, prometheus.CounterValue, float64(b.TimedOut))
}

func (c *collector) collectPayments(ch chan<- prometheus.Metric, p *status.Payments) {
	if p == nil {
		return
	}
	for dir, v := range map[string]uint64{"earned": p.EarnedMsat, "settled": p.SettledMsat, "spent": p.SpentMsat} {
		ch <- prometheus.MustNewConstMetric(c.hasPays, prometheus.CounterValue, float64(v), dir)
	}
	ch <- prometheus.MustNewConstMetric(c.paused, prometheus.CounterValue, float64(p.Paused))
	for state, n := range p.Channels {
		ch <- prometheus.MustNewConstMetric(c.chans, prometheus.GaugeValue, float64(n), state)
	}
}
