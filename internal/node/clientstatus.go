package node

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/status"
)

// ClientStatus observes a client — `obol proxy` or `obol serve` — for its
// status page and metrics: the relays it knows, its own circuits with
// their whole paths, and the bytes its streams carried (counted by
// CountBytes, e.g. through status.CountingConn). It never records
// destinations or which circuit serves which request.
type ClientStatus struct {
	kind     string
	c        ClientView
	mgr      atomic.Pointer[client.CircuitManager] // nil for a hidden service
	errors   *status.ErrorCounter                  // may be nil
	payments atomic.Pointer[status.PaymentSource]
	started  time.Time
	bytes    atomic.Uint64
}

// ClientView is what a client's status shows of it.
type ClientView interface {
	Known() []*descriptor.Relay // the relays it knows
	Channels() int              // links open to relays
}

// ViewOf is the view of c whose links are links.
func ViewOf(c *Client, links *link.Manager) ClientView { return clientView{c, links} }

type clientView struct {
	*Client
	links *link.Manager
}

func (v clientView) Channels() int { return v.links.Channels() }

// NewClientStatus returns an observer of a client of the given kind
// (status.KindProxy or status.KindServe) whose circuits mgr keeps; errs
// (may be nil) counts its warnings and errors by kind.
func NewClientStatus(kind string, c ClientView, mgr *client.CircuitManager, errs *status.ErrorCounter) *ClientStatus {
	s := &ClientStatus{kind: kind, c: c, errors: errs, started: time.Now()}
	s.mgr.Store(mgr)
	return s
}

// Watch sets the manager whose circuits are shown, for a status made
// before its manager.
func (s *ClientStatus) Watch(m *client.CircuitManager) { s.mgr.Store(m) }

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
	var guards []status.Guard
	var builds *status.BuildTimes
	if m := s.mgr.Load(); m != nil { // a hidden service keeps its circuits itself
		circs = m.Circuits()
		builds = buildTimes(m.BuildTimes())
		for _, g := range m.GuardStatus() {
			guards = append(guards, status.Guard{PeerID: g.ID.String(), Circuits: g.Circuits, Built: g.Built,
				Streams: g.Streams, Answered: g.Answered, Disabled: !g.Disabled.IsZero()})
		}
	}
	known := s.c.Known()
	snap := status.Snapshot{
		Node:     status.Node{Kind: s.kind, Started: s.started.UTC(), Now: time.Now().UTC()},
		Traffic:  status.Traffic{CircuitsOpen: len(circs), Channels: s.c.Channels(), Bytes: s.bytes.Load()},
		DHT:      status.DHT{KnownRelays: len(known)}, // a client has no DHT node
		Relays:   relayRows(known),
		Circuits: make([]status.Circuit, 0, len(circs)),
		Guards:   guards,
		Builds:   builds,
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

// buildTimes is the status form of a manager's build-time histogram.
func buildTimes(bt client.BuildTimes) *status.BuildTimes {
	out := &status.BuildTimes{Counts: bt.Counts, Count: bt.Count, TimedOut: bt.TimedOut,
		SumMs: float64(bt.Sum) / float64(time.Millisecond)}
	for _, b := range client.BuildTimeBuckets {
		out.BoundsMs = append(out.BoundsMs, float64(b)/float64(time.Millisecond))
	}
	return out
}
