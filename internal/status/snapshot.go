// Package status is what a running obol node tells its operator: a
// snapshot of the node (known relays, circuits as this node knows them,
// traffic, DHT, payments, errors), served as JSON at /api/status, as a
// self-contained page with a throughput graph, and printed by `obol
// status`. Only cmd imports it.
//
// A snapshot never holds keys, tokens, proofs or destinations. For a
// relay, a circuit is only its previous and next hop; a client sees its
// own paths.
package status

import (
	"context"
	"time"
)

// Source produces snapshots of a node. It is called for every request and
// once per sampling interval, possibly concurrently.
type Source interface {
	Snapshot(ctx context.Context) Snapshot
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) Snapshot

// Snapshot implements Source.
func (f SourceFunc) Snapshot(ctx context.Context) Snapshot { return f(ctx) }

// Snapshot is the state of a node at one moment: the body of /api/status.
type Snapshot struct {
	Node     Node      `json:"node"`
	Traffic  Traffic   `json:"traffic"`
	DHT      DHT       `json:"dht"`
	Relays   []Relay   `json:"relays"`
	Circuits []Circuit `json:"circuits"`
	// Guards are a client's guards with their path-bias counts.
	Guards []Guard `json:"guards,omitempty"`
	// Payments is nil when the node neither earns nor spends.
	Payments *Payments `json:"payments,omitempty"`
	// Errors counts warnings and errors by kind since the node started.
	Errors map[string]uint64 `json:"errors,omitempty"`
	// Throughput is the recent history the server sampled, oldest first.
	Throughput []Sample `json:"throughput,omitempty"`
	// Builds is the histogram of the client's circuit build times; nil
	// for a relay.
	Builds *BuildTimes `json:"builds,omitempty"`
}

// BuildTimes is a histogram of circuit build times.
type BuildTimes struct {
	// BoundsMs are the buckets' upper bounds in milliseconds, ascending;
	// Counts has one more element, for the builds slower than all.
	BoundsMs []float64 `json:"bounds_ms"`
	Counts   []uint64  `json:"counts"`
	Count    uint64    `json:"count"`  // builds that completed
	SumMs    float64   `json:"sum_ms"` // their total time
	TimedOut uint64    `json:"timed_out"`
}

// Node kinds.
const (
	KindRelay = "relay"
	KindProxy = "proxy"
	KindServe = "serve"
)

// Node names the node.
type Node struct {
	Kind    string    `json:"kind"` // KindRelay, KindProxy or KindServe
	PeerID  string    `json:"peer_id,omitempty"`
	Roles   string    `json:"roles,omitempty"`
	Addrs   []string  `json:"addrs,omitempty"`
	Started time.Time `json:"started"`
	Now     time.Time `json:"now"`
}

// Traffic counts what the node carries. Counters only grow while the node
// runs; gauges are the current value.
type Traffic struct {
	CircuitsOpen int    `json:"circuits_open"` // gauge
	StreamsOpen  int64  `json:"streams_open"`  // gauge
	Channels     int    `json:"channels"`      // gauge: link channels to other nodes
	Cells        uint64 `json:"cells"`         // counter: cells forwarded (relay)
	Bytes        uint64 `json:"bytes"`         // counter: link bytes of those cells (relay); bytes its streams carried (client)
}

// DHT is the node's view of the DHT.
type DHT struct {
	RoutingTable int `json:"routing_table"` // gauge: peers in the routing table
	KnownRelays  int `json:"known_relays"`  // gauge: unexpired descriptors known
	// Lookups and LookupFailures count DHT queries the node made.
	Lookups        uint64 `json:"lookups"`
	LookupFailures uint64 `json:"lookup_failures"`
	// Own is the node's own descriptor as last found in the DHT (relays).
	Own *OwnRecord `json:"own,omitempty"`
}

// OwnRecord is a relay's descriptor as the DHT returned it.
type OwnRecord struct {
	Seq     uint64    `json:"seq"`
	Expires time.Time `json:"expires"`
	Checked time.Time `json:"checked"`
}

// Relay is one relay the node knows from the DHT.
type Relay struct {
	PeerID     string    `json:"peer_id"`
	Roles      string    `json:"roles"`
	Bandwidth  uint64    `json:"bandwidth"`    // advertised bytes per second
	PerMiB     uint64    `json:"per_mib_msat"` // price
	PerCircuit uint64    `json:"per_circuit_msat"`
	Published  time.Time `json:"published"`
}

// Circuit is one circuit as this node knows it: a relay knows its
// previous and next hop; a client knows its whole path.
type Circuit struct {
	Prev    string   `json:"prev,omitempty"`
	Next    string   `json:"next,omitempty"` // "" at the last hop
	Path    []string `json:"path,omitempty"` // client: guard first
	Streams int      `json:"streams,omitempty"`
}

// Guard is one of a client's guards and what its circuits did: builds
// sent through it and built, streams tried on them and answered. Disabled
// says path bias took it out of use.
type Guard struct {
	PeerID   string `json:"peer_id"`
	Circuits uint64 `json:"circuits"`
	Built    uint64 `json:"built"`
	Streams  uint64 `json:"streams"`
	Answered uint64 `json:"answered"`
	Disabled bool   `json:"disabled,omitempty"`
}

// Payments is what a node earned or spent, fed by its payment wiring
// through a PaymentSource.
type Payments struct {
	EarnedMsat  uint64 `json:"earned_msat"`  // relay: credited by channel updates
	SettledMsat uint64 `json:"settled_msat"` // relay: redeemed at the mint; client: reclaimed
	SpentMsat   uint64 `json:"spent_msat"`   // client: paid to relays
	// Channels counts payment channels by state (e.g. "open", "closing",
	// "settled", "refunded").
	Channels map[string]int `json:"channels,omitempty"`
	Paused   uint64         `json:"paused"` // circuits paused for want of credit
}

// PaymentSource is the hook through which a node's payment wiring reports
// its figures to the status page and metrics.
type PaymentSource interface {
	Payments() Payments
}

// Sample is one point of the throughput graph.
type Sample struct {
	Time        time.Time `json:"t"`
	BytesPerSec float64   `json:"bytes_per_sec"`
	CellsPerSec float64   `json:"cells_per_sec"`
	Circuits    int       `json:"circuits"`
}
