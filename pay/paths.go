package pay

import (
	"errors"
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/payment/wallet"
)

// Free reports whether a relay charges nothing.
func Free(d *descriptor.Relay) bool {
	return d.Price == (descriptor.Price{})
}

// RelayOf reads what paying relay d takes from its descriptor; it fails
// for a relay that charges but cannot be paid from a wallet of mint and
// unit (another mint, no receiver key, another keyset).
func RelayOf(d *descriptor.Relay, mint, unit, keyset string) (RelayTerms, error) {
	p := d.Payment
	ok := slices.ContainsFunc(p.Mints, func(m descriptor.AcceptedMint) bool {
		return m.URL == mint && m.Unit == unit && (len(m.Keysets) == 0 || slices.Contains(m.Keysets, keyset))
	})
	if !ok {
		return RelayTerms{}, errors.New("pay: the relay does not accept the wallet's mint, unit or keyset")
	}
	key, err := btcec.ParsePubKey(p.ReceiverKey)
	if err != nil {
		return RelayTerms{}, fmt.Errorf("pay: the relay's receiver key: %w", err)
	}
	return RelayTerms{ReceiverKey: key, MaxCapacity: p.MaxCapacity, Terms: client.Terms{
		PerMiB: d.Price.PerMiB, PerCircuit: d.Price.PerCircuit,
		PrepayBytes: p.PrepayBytes, FreeBytes: p.FreeBytes,
	}}, nil
}

// Usable reports whether the client can use relay d: it is free, or it
// accepts the wallet's mint and unit. It is client.Config.Usable.
func (c *Channels) Usable(d *descriptor.Relay) bool {
	if Free(d) {
		return true
	}
	ks, err := c.cfg.Wallet.Keyset()
	if err != nil {
		return false
	}
	_, err = RelayOf(d, c.cfg.Wallet.MintURL(), c.cfg.Wallet.Unit(), ks.ID)
	return err == nil
}

// Paths pays circuits: its Pay is client.Config.Pay.
type Paths struct {
	C *Channels
	// Budget bounds what one circuit may cost, in msat (0: no bound).
	Budget uint64
	// Window is the traffic, in bytes, a hop's channel is sized for
	// (default 64 MiB); a circuit that moves more opens further
	// channels, up to client.MaxChannelsPerHop per hop.
	Window uint64
}

// DefaultWindow is the traffic a channel is sized for by default.
const DefaultWindow = 64 << 20

// Pay implements client.Config.Pay: a channel of a standard capacity per
// paid hop, sized for Window of traffic or the budget's share, whichever
// is less. For a while after a funding could not reach the mint, it
// refuses paths with paid hops (ErrMintUnreachable). A nil descriptor (a relay the client knows only by address) is
// left unpaid: it carries the circuit as far as its free allowance.
func (p *Paths) Pay(path []*descriptor.Relay) (client.PayConfig, error) {
	ks, err := p.C.cfg.Wallet.Keyset()
	if err != nil {
		return client.PayConfig{}, err
	}
	window := p.Window
	if window == 0 {
		window = DefaultWindow
	}
	cfg := client.PayConfig{Budget: p.Budget, Hops: make([]client.HopPayment, len(path))}
	terms := make([]client.Terms, len(path))
	var funding uint64
	sched := &fundSchedule{}
	for i, d := range path {
		if d == nil || Free(d) {
			continue
		}
		r, err := RelayOf(d, p.C.cfg.Wallet.MintURL(), p.C.cfg.Wallet.Unit(), ks.ID)
		if err != nil {
			return client.PayConfig{}, err
		}
		terms[i] = r.Terms
		need := r.Terms.Owed(window + r.Terms.PrepayBytes)
		if p.Budget != 0 {
			need = min(need, p.Budget)
		}
		capacity, err := p.C.Capacity(need, r)
		if err != nil {
			return client.PayConfig{}, err
		}
		funding += capacity
		cfg.Hops[i] = p.C.circuitHop(r, capacity, sched)
	}
	if !client.Affordable(terms, 0, p.Budget) {
		return client.PayConfig{}, client.ErrUnaffordable
	}
	if funding > 0 {
		if err := p.C.mintReachable(); err != nil {
			return client.PayConfig{}, err
		}
		// A circuit still waiting to fund its channels when the mint is
		// found away would carry a new request only as far as the free
		// allowance goes.
		cfg.Stale = func() bool { return sched.unpaid.Load() > 0 && p.C.mintReachable() != nil }
	}
	if bal := p.C.cfg.Wallet.Balance(); funding > bal {
		return client.PayConfig{}, fmt.Errorf("%w: the path's channels need %d %s, the wallet holds %d",
			wallet.ErrInsufficient, funding, p.C.cfg.Wallet.Unit(), bal)
	}
	return cfg, nil
}
