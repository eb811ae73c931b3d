package obol

import (
	"context"
	"errors"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/internal/node"
)

// RelayConfig configures a relay: its data directory (identity and onion
// keys, payment ledger), listen and announced addresses, bootstrap peers,
// roles, exit policy and, for a relay that charges, its payment terms
// (pay.RelayPayment). Zero values pick the defaults.
type RelayConfig = node.RelayConfig

// Relay forwards cells for circuits; as its roles say, it is also an
// exit, a guard, an introduction or rendezvous point. Create it with
// NewRelay, run it with Run.
type Relay struct {
	cfg   RelayConfig
	ready chan struct{} // closed once Run has opened the relay, or failed to

	mu      sync.Mutex // guards the fields below
	running bool
	r       *node.Relay // set before ready is closed
}

// NewRelay checks cfg and returns a relay. It does no I/O.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Relay{cfg: cfg, ready: make(chan struct{})}, nil
}

// Run opens the relay (its keys, its listening host and, for a paid
// relay, its ledger and mint), joins the network, publishes its
// descriptor and forwards cells until ctx ends; a paid relay then settles
// its channels. It returns once everything it started has ended and
// everything it opened is closed. A relay runs once.
func (r *Relay) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("obol: relay: Run called twice")
	}
	r.running = true
	r.mu.Unlock()
	nr, err := node.OpenRelay(r.cfg)
	if err != nil {
		close(r.ready)
		return err
	}
	r.mu.Lock()
	r.r = nr
	r.mu.Unlock()
	close(r.ready)
	err = nr.Run(ctx)
	return errors.Join(err, nr.Close())
}

// AddrInfo is the relay's peer ID and addresses, through which others
// join the network, once Run has opened it: it waits until then or until
// ctx ends.
func (r *Relay) AddrInfo(ctx context.Context) (peer.AddrInfo, error) {
	select {
	case <-r.ready:
	case <-ctx.Done():
		return peer.AddrInfo{}, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.r == nil {
		return peer.AddrInfo{}, errors.New("obol: relay did not start")
	}
	return r.r.AddrInfo(), nil
}
