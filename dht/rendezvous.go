package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	xrate "github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
)

// A public relay is a hole-punch rendezvous for relays behind cone NATs
// (specs/02-dht.md §Reachability): it holds their circuit relay v2
// reservations and forwards, for each dial to one of them, a relayed
// connection that carries only the libp2p handshake, identify and the
// DCUtR exchange, never cells. Its limits are sized for that.
var rendezvousLimit = relay.RelayLimit{
	Duration: time.Minute, // DCUtR gives up after a minute
	Data:     64 << 10,    // each way: handshake, identify, DCUtR
}

// rendezvousResources are the relay service's resources.
func rendezvousResources() relay.Resources {
	rc := relay.DefaultResources()
	limit := rendezvousLimit
	rc.Limit = &limit
	rc.MaxCircuits = 8 // relayed connections to one reserved relay at once
	rc.BufferSize = 2048
	return rc
}

// Per source address, how many relayed connections a rendezvous opens at
// once and then a second, to all the relays it holds reservations for: a
// relay behind a cone NAT takes relayed connections from one rendezvous
// at RelayedConnRate after a burst of RelayedConnBurst, and no one
// source may spend more than half of that.
const (
	rendezvousSourceRate  = RelayedConnRate / 2.0
	rendezvousSourceBurst = RelayedConnBurst / 2
)

// rendezvousACL limits the relayed connections a rendezvous opens per
// source IPv4 address or IPv6 /56: the relay behind the NAT sees them all
// come from the rendezvous, so only the rendezvous can tell sources apart.
type rendezvousACL struct{ perSource *xrate.Limiter }

func newRendezvousACL() *rendezvousACL { return &rendezvousACL{perSource: perSourceLimiter()} }

// perSourceLimiter limits, per source IPv4 address or IPv6 /56, what a
// rendezvous does for a source: relayed connections and callbacks.
func perSourceLimiter() *xrate.Limiter {
	perSource := xrate.Limit{RPS: rendezvousSourceRate, Burst: rendezvousSourceBurst}
	return &xrate.Limiter{
		NetworkPrefixLimits: []xrate.PrefixLimit{ // tests on loopback
			{Prefix: netip.MustParsePrefix("127.0.0.0/8")},
			{Prefix: netip.MustParsePrefix("::1/128")},
		},
		SubnetRateLimiter: xrate.SubnetLimiter{
			IPv4SubnetLimits: []xrate.SubnetLimit{{PrefixLength: 32, Limit: perSource}},
			IPv6SubnetLimits: []xrate.SubnetLimit{{PrefixLength: 56, Limit: perSource}},
			GracePeriod:      time.Minute,
		},
	}
}

// AllowReserve admits every reservation; the relay service's resources
// bound them.
func (*rendezvousACL) AllowReserve(peer.ID, ma.Multiaddr) bool { return true }

// AllowConnect admits a relayed connection within its source's rate.
func (a *rendezvousACL) AllowConnect(_ peer.ID, srcAddr ma.Multiaddr, _ peer.ID) bool {
	return allowSource(a.perSource, srcAddr)
}

// StartRendezvous starts the circuit relay v2 service on h, with the
// limits of a hole-punch rendezvous. Close the result to stop it.
func StartRendezvous(h host.Host, allowPrivate bool) (*relay.Relay, error) {
	opts := []relay.Option{relay.WithResources(rendezvousResources()), relay.WithACL(newRendezvousACL())}
	if allowPrivate {
		opts = append(opts, relay.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }))
	}
	r, err := relay.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("dht: rendezvous service: %w", err)
	}
	return r, nil
}

// Defaults of a relay's reservations.
const (
	DefaultReservations = 2
	reserveRetry        = 10 * time.Second
	reserveTimeout      = 30 * time.Second
)

// ReservationsConfig configures the reservations of a relay behind a
// cone NAT.
type ReservationsConfig struct {
	// Candidates, if set, lists public relays to reserve at — those of
	// the relay's view with direct addresses — and is asked again at
	// each look. They are tried in a random order, so that the relays
	// behind NATs spread over the network's rendezvous rather than all
	// load (and tell) the same few.
	Candidates func() []peer.AddrInfo
	// Rendezvous are the public relays to reserve at when the candidates
	// do not give Want reservations, in order of preference (a relay's
	// bootstrap peers).
	Rendezvous []peer.AddrInfo
	// Want is how many reservations to hold (default
	// DefaultReservations).
	Want int
	// Changed is called whenever the set of circuit addresses changes.
	Changed func()
	Logger  *slog.Logger // default: discard
}

// Reservations holds circuit relay v2 reservations at some rendezvous
// relays, renews them before they expire, and names the /p2p-circuit
// addresses a relay behind a cone NAT publishes.
type Reservations struct {
	cfg ReservationsConfig
	h   host.Host

	mu   sync.Mutex                  // guards held
	held map[peer.ID]heldReservation // by rendezvous
}

// heldReservation is one reservation: where, and when to renew it.
type heldReservation struct {
	at      peer.AddrInfo
	renewAt time.Time
}

// NewReservations prepares the reservations of h. It contacts no peer;
// Run does.
func NewReservations(h host.Host, cfg ReservationsConfig) (*Reservations, error) {
	if cfg.Want < 0 {
		return nil, errors.New("dht: negative reservation count")
	}
	if cfg.Want == 0 {
		cfg.Want = DefaultReservations
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Rendezvous = slices.Clone(cfg.Rendezvous)
	return &Reservations{cfg: cfg, h: h, held: map[peer.ID]heldReservation{}}, nil
}

// Addrs are the /p2p-circuit addresses of the reservations held now:
// each rendezvous's addresses, its peer ID, /p2p-circuit; in the order of
// the rendezvous' peer IDs.
func (r *Reservations) Addrs() []ma.Multiaddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := slices.Sorted(maps.Keys(r.held))
	var out []ma.Multiaddr
	for _, id := range ids {
		for _, a := range r.held[id].at.Addrs {
			out = append(out, circuitAddr(a, id))
		}
	}
	return out
}

// Holds reports whether a reservation at rendezvous p is held now.
func (r *Reservations) Holds(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.held[p]
	return ok
}

func circuitAddr(a ma.Multiaddr, relay peer.ID) ma.Multiaddr {
	return a.Encapsulate(ma.StringCast("/p2p/" + relay.String() + "/p2p-circuit"))
}

// Run keeps Want reservations until ctx ends: it reserves at the
// candidates in a random order, then at the fallback rendezvous in
// order, renews each at half its lifetime, and tries another when one
// fails. It drops them all when it returns.
func (r *Reservations) Run(ctx context.Context) error {
	defer r.drop()
	for {
		next := r.renew(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(next):
		}
	}
}

// renew renews the reservations past half their lifetime, reserves at new
// rendezvous while fewer than Want are held, and returns how long to wait
// before looking again.
func (r *Reservations) renew(ctx context.Context) time.Duration {
	next := DefaultReachInterval
	changed := false
	r.mu.Lock()
	held := slices.Collect(maps.Values(r.held))
	r.mu.Unlock()
	n := 0
	for _, h := range held {
		if time.Now().Before(h.renewAt) {
			n++
			next = min(next, time.Until(h.renewAt))
			continue
		}
		renewAt, ok := r.reserve(ctx, h.at)
		if !ok {
			changed = true
			continue
		}
		n++
		next = min(next, time.Until(renewAt))
	}
	if n < r.cfg.Want {
		var cands []peer.AddrInfo
		if r.cfg.Candidates != nil {
			cands = r.cfg.Candidates()
			mrand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		}
		for _, ai := range append(cands, r.cfg.Rendezvous...) {
			if n >= r.cfg.Want || ctx.Err() != nil {
				break
			}
			r.mu.Lock()
			_, ok := r.held[ai.ID]
			r.mu.Unlock()
			if ok || ai.ID == r.h.ID() {
				continue
			}
			if renewAt, ok := r.reserve(ctx, ai); ok {
				n++
				changed = true
				next = min(next, time.Until(renewAt))
			}
		}
	}
	if n < r.cfg.Want {
		next = reserveRetry
	}
	if changed {
		r.cfg.Logger.Info("rendezvous reservations", "held", n)
		if r.cfg.Changed != nil {
			r.cfg.Changed()
		}
	}
	return max(next, time.Second)
}

// reserve asks ai for a reservation and records it, or forgets ai's if
// it refused; it returns when to renew.
func (r *Reservations) reserve(ctx context.Context, ai peer.AddrInfo) (time.Time, bool) {
	rctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	start := time.Now()
	got, err := client.Reserve(rctx, r.h, ai)
	cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		delete(r.held, ai.ID)
		r.cfg.Logger.Debug("reservation at a rendezvous failed", "err", err)
		return time.Time{}, false
	}
	renewAt := start.Add(got.Expiration.Sub(start) / 2)
	r.held[ai.ID] = heldReservation{at: ai, renewAt: renewAt}
	return renewAt, true
}

func (r *Reservations) drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.held)
}
