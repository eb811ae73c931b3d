package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment"
)

// Settlement is where the money went once every process had stopped.
type Settlement struct {
	// Channels is every payment channel in the relays' ledgers; Settled
	// those closed at the mint. AtStop counts the channels settled when
	// the network stopped, before the relays killed and never started
	// again, and those that stopped without reaching the mint
	// (UnsettledAtStop of them), were started once more (Revived in all)
	// to settle theirs.
	Channels        int `json:"channels"`
	Settled         int `json:"settled"`
	AtStop          int `json:"settled_at_stop"`
	UnsettledAtStop int `json:"relays_unsettled_at_stop"`
	Revived         int `json:"revived_relays"`
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
	path := filepath.Join(dir, pay.LedgerFile)
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
	wdir := filepath.Join(dir, pay.WalletDir)
	if _, err := os.Stat(filepath.Join(wdir, pay.WalletSeedFile)); errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil // never paid
	}
	w, err := pay.OpenWallet(pay.WalletConfig{Dir: wdir, DirectMintConnectionUnsafe: true})
	if err != nil {
		return 0, 0, err
	}
	defer w.Close()
	return w.Balance(), w.Pending(), nil
}

// The money is counted by runs of the obol binary, not in the soak's own
// process: opening a wallet checks every proof it holds, and the soak's
// process may be built with the race detector, which makes that slow.

// RelayMoney is a stopped relay's ledger and earnings wallet.
type RelayMoney struct {
	Channels int    `json:"channels"`
	Settled  int    `json:"settled"`
	Earned   uint64 `json:"earned"`
	Balance  uint64 `json:"balance"`
	Pending  int    `json:"pending"`
}

// CountRelay writes the RelayMoney of the relay data directory dir to w
// as JSON: what `obol soak --relay-money DIR` does.
func CountRelay(dir string, w io.Writer) error {
	var m RelayMoney
	var err error
	if m.Channels, m.Settled, m.Earned, err = ledger(dir); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if m.Balance, m.Pending, err = relayWallet(dir); err != nil {
		return fmt.Errorf("wallet: %w", err)
	}
	return json.NewEncoder(w).Encode(m)
}

// ClientMoney is a client's wallet once its channels are settled.
type ClientMoney struct {
	Balance uint64 `json:"balance"`
	Locked  uint64 `json:"locked"`
	Open    int    `json:"open"`
	Dust    uint64 `json:"dust"`
}

// SettleClient settles the channels of the client wallet in dir and
// writes its ClientMoney to w as JSON: what `obol soak --settle-wallet
// DIR` does.
func SettleClient(ctx context.Context, dir string, w io.Writer) error {
	pay, err := pay.OpenPayer(ctx, pay.PayerConfig{Wallet: pay.WalletConfig{Dir: dir, DirectMintConnectionUnsafe: true}})
	if err != nil {
		return err
	}
	rep, err := pay.Settle(ctx)
	m := ClientMoney{Balance: pay.Balance(), Locked: rep.Locked, Open: rep.Open, Dust: rep.Dust}
	if err := errors.Join(err, pay.Close()); err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(m)
}

// askChild runs the obol binary with args and decodes its JSON answer
// into v.
func askChild(ctx context.Context, bin string, v any, args ...string) error {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %w: %s", args, err, strings.TrimSpace(stderr.String()))
	}
	return json.Unmarshal(out.Bytes(), v)
}

// countRelays counts every relay directory's ledger and wallet.
func (n *network) countRelays(ctx context.Context, s *Settlement) error {
	s.Channels, s.Settled, s.EarnedSat, s.RelaysSat, s.Pending = 0, 0, 0, 0, 0
	for _, r := range n.snapshot() {
		var m RelayMoney
		if err := askChild(ctx, n.cfg.Binary, &m, "soak", "--relay-money", r.dir); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		s.Channels += m.Channels
		s.Settled += m.Settled
		s.EarnedSat += m.Earned
		s.RelaysSat += m.Balance
		s.Pending += m.Pending
	}
	return nil
}

// settleClients settles every client's channels and counts its wallet.
func (n *network) settleClients(ctx context.Context, s *Settlement) error {
	for _, c := range n.clients {
		var m ClientMoney
		if err := askChild(ctx, n.cfg.Binary, &m, "soak", "--settle-wallet", c.wallet); err != nil {
			return fmt.Errorf("settling %s's channels: %w", c.name, err)
		}
		s.WalletsSat += m.Balance
		s.LockedSat += m.Locked
		s.ClientOpen += m.Open
		s.DustSat += m.Dust
	}
	return nil
}
