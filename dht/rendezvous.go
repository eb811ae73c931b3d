package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
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

// StartRendezvous starts the circuit relay v2 service on h, with the
// limits of a hole-punch rendezvous. Close the result to stop it.
func StartRendezvous(h host.Host, allowPrivate bool) (*relay.Relay, error) {
	opts := []relay.Option{relay.WithResources(rendezvousResources())}
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
	// Rendezvous are the public relays to reserve at, in order of
	// preference (a relay's bootstrap peers).
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

	mu   sync.Mutex            // guards held
	held map[peer.ID]time.Time // rendezvous reserved at -> when to renew
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
	cfg.Rendezvous = slices.DeleteFunc(slices.Clone(cfg.Rendezvous), func(ai peer.AddrInfo) bool { return ai.ID == h.ID() })
	return &Reservations{cfg: cfg, h: h, held: map[peer.ID]time.Time{}}, nil
}

// Addrs are the /p2p-circuit addresses of the reservations held now:
// each rendezvous's addresses, its peer ID, /p2p-circuit.
func (r *Reservations) Addrs() []ma.Multiaddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ma.Multiaddr
	for _, ai := range r.cfg.Rendezvous {
		if _, ok := r.held[ai.ID]; !ok {
			continue
		}
		for _, a := range ai.Addrs {
			out = append(out, circuitAddr(a, ai.ID))
		}
	}
	return out
}

func circuitAddr(a ma.Multiaddr, relay peer.ID) ma.Multiaddr {
	return a.Encapsulate(ma.StringCast("/p2p/" + relay.String() + "/p2p-circuit"))
}

// Run keeps Want reservations until ctx ends: it reserves at the
// rendezvous in order, renews each at half its lifetime, and tries
// another when one fails. It drops them all when it returns.
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

// renew reserves where a reservation is missing or past half its
// lifetime, and returns how long to wait before looking again.
func (r *Reservations) renew(ctx context.Context) time.Duration {
	next := DefaultReachInterval
	changed := false
	held := 0
	for _, ai := range r.cfg.Rendezvous {
		r.mu.Lock()
		renewAt, ok := r.held[ai.ID]
		r.mu.Unlock()
		if ok && time.Now().Before(renewAt) {
			held++
			next = min(next, time.Until(renewAt))
			continue
		}
		if !ok && held >= r.cfg.Want {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, reserveTimeout)
		start := time.Now()
		got, err := client.Reserve(rctx, r.h, ai)
		cancel()
		r.mu.Lock()
		if err != nil {
			if ok {
				delete(r.held, ai.ID)
				changed = true
			}
			r.mu.Unlock()
			r.cfg.Logger.Debug("reservation at a rendezvous failed", "err", err)
			continue
		}
		renewAt = start.Add(got.Expiration.Sub(start) / 2)
		r.held[ai.ID] = renewAt
		r.mu.Unlock()
		changed = changed || !ok
		held++
		next = min(next, time.Until(renewAt))
	}
	if held < r.cfg.Want {
		next = reserveRetry
	}
	if changed {
		r.cfg.Logger.Info("rendezvous reservations", "held", held)
		if r.cfg.Changed != nil {
			r.cfg.Changed()
		}
	}
	return max(next, time.Second)
}

func (r *Reservations) drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.held)
}
