package soak

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/obolnet/obol/cmd/internal/node"
	"github.com/obolnet/obol/payment"
)

// Settlement is where the money went once every process had stopped.
type Settlement struct {
	// Channels is every payment channel in the relays' ledgers; Settled
	// those closed at the mint. AtStop counts the channels settled when
	// the network stopped, before the relays killed and never started
	// again (Revived) were started once more to settle theirs.
	Channels int `json:"channels"`
	Settled  int `json:"settled"`
	AtStop   int `json:"settled_at_stop"`
	Revived  int `json:"revived_relays"`
	// RelaysSat is what the relays' wallets hold; EarnedSat the sum of the
	// last balance each relay accepted on each channel (what its closes
	// must have redeemed, the mint charging no fees); Pending the wallet
	// operations not finished.
	RelaysSat uint64 `json:"relays_sat"`
	EarnedSat uint64 `json:"earned_sat"`
	Pending   int    `json:"relay_wallet_pending"`
	// WalletsSat is what the clients' wallets hold after settling their
	// channels; LockedSat the funding of the channels still open
	// (ClientOpen), refundable after their expiry; DustSat what settled
	// channels left at the mint.
	WalletsSat uint64 `json:"wallets_sat"`
	LockedSat  uint64 `json:"locked_sat"`
	ClientOpen int    `json:"client_open_channels"`
	DustSat    uint64 `json:"dust_sat"`
	GivenSat   uint64 `json:"given_sat"`
	Err        string `json:"error,omitempty"`
}

// Balanced reports whether not one sat is lost: the relays' wallets, the
// clients' wallets and the refundable funding add up to what was given.
func (s Settlement) Balanced() bool {
	return s.RelaysSat+s.WalletsSat+s.LockedSat == s.GivenSat && s.DustSat == 0
}

// ledger counts a stopped relay's channels and sums the last balance it
// accepted on each.
func ledger(dir string) (channels, settled int, earned uint64, err error) {
	path := filepath.Join(dir, node.LedgerFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, 0, 0, nil // never paid
	}
	st, recs, err := payment.OpenFileStore(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer st.Close()
	balance := map[payment.ChannelID]uint64{}
	done := map[payment.ChannelID]bool{}
	for _, r := range recs {
		balance[r.Channel] = max(balance[r.Channel], r.Balance)
		done[r.Channel] = done[r.Channel] || r.Settled
	}
	for id, b := range balance {
		earned += b
		if done[id] {
			settled++
		}
	}
	return len(balance), settled, earned, nil
}

// relayWallet opens a stopped relay's earnings wallet: its balance and
// pending operations.
func relayWallet(dir string) (uint64, int, error) {
	wdir := filepath.Join(dir, node.WalletDir)
	if _, err := os.Stat(filepath.Join(wdir, node.WalletSeedFile)); errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil // never paid
	}
	w, err := node.OpenWallet(node.WalletConfig{Dir: wdir})
	if err != nil {
		return 0, 0, err
	}
	defer w.Close()
	return w.Balance(), w.Pending(), nil
}

// countRelays reads every relay directory's ledger and wallet.
func (n *network) countRelays(s *Settlement) error {
	s.Channels, s.Settled, s.EarnedSat, s.RelaysSat, s.Pending = 0, 0, 0, 0, 0
	for _, r := range n.snapshot() {
		ch, done, earned, err := ledger(r.dir)
		if err != nil {
			return fmt.Errorf("%s ledger: %w", r.name, err)
		}
		bal, pending, err := relayWallet(r.dir)
		if err != nil {
			return fmt.Errorf("%s wallet: %w", r.name, err)
		}
		s.Channels += ch
		s.Settled += done
		s.EarnedSat += earned
		s.RelaysSat += bal
		s.Pending += pending
	}
	return nil
}

// settleClients reopens every client's wallet and takes back what its
// channels did not spend.
func (n *network) settleClients(ctx context.Context, s *Settlement) error {
	for _, c := range n.clients {
		pay, err := node.OpenClientPayment(ctx, node.ClientPaymentConfig{Wallet: node.WalletConfig{Dir: c.wallet}})
		if err != nil {
			return fmt.Errorf("%s wallet: %w", c.name, err)
		}
		rep, err := pay.Settle(ctx)
		s.WalletsSat += pay.Balance()
		s.LockedSat += rep.Locked
		s.ClientOpen += rep.Open
		s.DustSat += rep.Dust
		if err := errors.Join(err, pay.Close()); err != nil {
			return fmt.Errorf("settling %s's channels: %w", c.name, err)
		}
	}
	return nil
}
