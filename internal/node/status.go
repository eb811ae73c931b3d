package node

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/status"
)

// Status intervals of a relay: how often it checks that its own
// descriptor can be found in the DHT.
const (
	StatusSampleEvery = time.Minute
	statusFirstTry    = time.Second
)

// RelayStatus observes a relay for its status page and metrics: it reads
// the router's counters and the relay's view of the network (the relays
// it shows are those it extends circuits to) and, while Run runs, looks
// its own descriptor up. It keeps nothing a relay does not already know:
// for each circuit only the previous and next hop.
type RelayStatus struct {
	r        *Relay
	started  time.Time
	errors   *status.ErrorCounter // may be nil
	payments atomic.Pointer[status.PaymentSource]
	every    time.Duration

	lookups, failures atomic.Uint64

	mu  sync.Mutex // guards own
	own *status.OwnRecord
}

// NewRelayStatus returns an observer of r; errs (may be nil) counts the
// relay's warnings and errors by kind. It starts nothing; call Run.
func NewRelayStatus(r *Relay, errs *status.ErrorCounter) *RelayStatus {
	return &RelayStatus{r: r, started: r.cfg.Now(), errors: errs, every: StatusSampleEvery}
}

// SetPayments plugs in the relay's payment figures.
func (s *RelayStatus) SetPayments(p status.PaymentSource) { s.payments.Store(&p) }

// Run checks the own descriptor until ctx ends: after one second, then
// at doubling intervals up to StatusSampleEvery, so a new relay's page
// fills quickly and an old one's costs one lookup a minute.
func (s *RelayStatus) Run(ctx context.Context) error {
	wait := statusFirstTry
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if s.r.node.RoutingTableSize() == 0 {
			continue // not joined yet
		}
		s.refresh(ctx)
		wait = min(2*wait, s.every) // often at first, while the DHT fills
	}
}

// refresh looks the own descriptor up.
func (s *RelayStatus) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	s.lookups.Add(1)
	d, _, err := s.r.node.LookupRelay(ctx, s.r.ID())
	if err != nil {
		s.failures.Add(1)
		return
	}
	s.mu.Lock()
	s.own = &status.OwnRecord{Seq: d.Seq, Expires: d.ExpiresAt().UTC(), Checked: s.r.cfg.Now().UTC()}
	s.mu.Unlock()
}

// Snapshot implements status.Source.
func (s *RelayStatus) Snapshot(ctx context.Context) status.Snapshot {
	st := s.r.router.Stats()
	snap := status.Snapshot{
		Node: status.Node{Kind: status.KindRelay, PeerID: s.r.ID().String(), Roles: s.r.cfg.Roles.String(),
			Started: s.started.UTC(), Now: s.r.cfg.Now().UTC()},
		Traffic: status.Traffic{CircuitsOpen: st.Circuits, StreamsOpen: st.Streams, Channels: s.r.router.Links().Channels(),
			Cells: st.Forwarded, Bytes: st.Forwarded * circuit.CellSize},
		DHT:      s.dht(),
		Relays:   relayRows(s.r.View().Relays()),
		Circuits: s.circuits(),
	}
	for _, a := range s.r.Addrs() {
		snap.Node.Addrs = append(snap.Node.Addrs, a.String())
	}
	if p := s.payments.Load(); p != nil {
		pay := (*p).Payments()
		snap.Payments = &pay
	}
	if s.errors != nil {
		snap.Errors = s.errors.Counts()
	}
	return snap
}

func (s *RelayStatus) dht() status.DHT {
	s.mu.Lock()
	own := s.own
	s.mu.Unlock()
	return status.DHT{RoutingTable: s.r.node.RoutingTableSize(), KnownRelays: s.r.View().Len(),
		Lookups: s.lookups.Load(), LookupFailures: s.failures.Load(), Own: own}
}

func (s *RelayStatus) circuits() []status.Circuit {
	known := s.r.router.Circuits()
	out := make([]status.Circuit, 0, len(known))
	for _, k := range known {
		c := status.Circuit{Prev: k.Prev.String()}
		if k.Next != "" {
			c.Next = k.Next.String()
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b status.Circuit) int { return cmp.Or(cmp.Compare(a.Prev, b.Prev), cmp.Compare(a.Next, b.Next)) })
	return out
}

// relayRows turns verified descriptors into status rows.
func relayRows(rs []*descriptor.Relay) []status.Relay {
	out := make([]status.Relay, 0, len(rs))
	for _, r := range rs {
		out = append(out, status.Relay{PeerID: r.PeerID.String(), Roles: r.Roles.String(), Bandwidth: r.Bandwidth,
			PerMiB: r.Price.PerMiB, PerCircuit: r.Price.PerCircuit, Published: r.PublishedAt().UTC()})
	}
	slices.SortFunc(out, func(a, b status.Relay) int { return cmp.Compare(a.PeerID, b.PeerID) })
	return out
}
