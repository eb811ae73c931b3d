package node

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/internal/status"
)

// ClientStatus observes a client — `obol proxy` or `obol serve` — for its
// status page and metrics: the relays it knows, its own circuits with
// their whole paths, and the bytes its streams carried (counted by
// CountBytes, e.g. through status.CountingConn). It never records
// destinations or which circuit serves which request.
type ClientStatus struct {
	kind     string
	c        *Client
	mgr      atomic.Pointer[client.Manager] // nil for a hidden service
	links    *link.Manager
	errors   *status.ErrorCounter // may be nil
	payments atomic.Pointer[status.PaymentSource]
	started  time.Time
	bytes    atomic.Uint64
}

// NewClientStatus returns an observer of a client of the given kind
// (status.KindProxy or status.KindServe) whose circuits mgr keeps over
// links; errs (may be nil) counts its warnings and errors by kind.
func NewClientStatus(kind string, c *Client, mgr *client.Manager, links *link.Manager, errs *status.ErrorCounter) *ClientStatus {
	s := &ClientStatus{kind: kind, c: c, links: links, errors: errs, started: time.Now()}
	s.mgr.Store(mgr)
	return s
}

// Watch sets the manager whose circuits are shown, for a status made
// before its manager.
func (s *ClientStatus) Watch(m *client.Manager) { s.mgr.Store(m) }

// SetPayments plugs in the client's payment figures.
func (s *ClientStatus) SetPayments(p status.PaymentSource) { s.payments.Store(&p) }

// CountBytes adds n bytes carried by the client's streams.
func (s *ClientStatus) CountBytes(n int) {
	if n > 0 {
		s.bytes.Add(uint64(n))
	}
}

// Snapshot implements status.Source.
func (s *ClientStatus) Snapshot(ctx context.Context) status.Snapshot {
	var circs []client.CircuitInfo
	if m := s.mgr.Load(); m != nil { // a hidden service keeps its circuits itself
		circs = m.Circuits()
	}
	snap := status.Snapshot{
		Node:     status.Node{Kind: s.kind, Started: s.started.UTC(), Now: time.Now().UTC()},
		Traffic:  status.Traffic{CircuitsOpen: len(circs), Channels: s.links.Channels(), Bytes: s.bytes.Load()},
		DHT:      status.DHT{RoutingTable: s.c.node.RoutingTableSize(), KnownRelays: s.c.cache.Len()},
		Relays:   relayRows(s.c.Known()),
		Circuits: make([]status.Circuit, 0, len(circs)),
	}
	for _, ci := range circs {
		c := status.Circuit{Streams: ci.Streams}
		for _, h := range ci.Hops {
			c.Path = append(c.Path, h.String())
		}
		snap.Traffic.StreamsOpen += int64(ci.Streams)
		snap.Circuits = append(snap.Circuits, c)
	}
	slices.SortFunc(snap.Circuits, func(a, b status.Circuit) int { return slices.Compare(a.Path, b.Path) })
	if p := s.payments.Load(); p != nil {
		pay := (*p).Payments()
		snap.Payments = &pay
	}
	if s.errors != nil {
		snap.Errors = s.errors.Counts()
	}
	return snap
}
