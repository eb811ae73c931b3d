package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment/wallet"
)

// payFlags are how a client (proxy, serve) pays relays that charge.
type payFlags struct {
	mint      string // "": use free relays only
	walletDir string
	budget    uint64 // msat per circuit
}

// defaultBudget bounds a circuit's cost: 1000 sat.
const defaultBudget = 1000_000

// defaultWalletDir is ~/.obol/wallet, where `obol wallet` keeps ecash.
func defaultWalletDir() string {
	if d := defaultDataDir(); d != "" {
		return filepath.Join(d, "wallet")
	}
	return ""
}

func (p *payFlags) register(fs *flag.FlagSet) {
	p.walletDir, p.budget = defaultWalletDir(), defaultBudget
	fs.Var(mintValue{&p.mint}, "mint", "pay relays that charge with ecash of the mint at this `URL`, from the wallet (default: use free relays only)")
	fs.StringVar(&p.walletDir, "wallet-dir", p.walletDir, "with -mint, the wallet's `directory` (as `obol wallet --data-dir` sees it); one process at a time")
	fs.Var(msatValue{&p.budget}, "budget", "with -mint, the most one circuit may cost, an `amount` in msat or e.g. 500sat")
}

func (p *payFlags) check(fs *flag.FlagSet) (int, bool) {
	if p.mint != "" && p.walletDir == "" {
		return usageError(fs, "wallet-dir", "", "no home directory to default to; give the wallet's directory"), false
	}
	return 0, true
}

// open opens the wallet and settles what earlier runs left; nil without
// -mint.
func (p *payFlags) open(ctx context.Context, timeout time.Duration, log *slog.Logger) (*pay.Payer, error) {
	if p.mint == "" {
		return nil, nil
	}
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pay, err := pay.OpenPayer(octx, pay.PayerConfig{
		Wallet: pay.WalletConfig{Dir: p.walletDir, Mint: p.mint}, Budget: p.budget, Logger: log})
	if err != nil {
		return nil, err
	}
	if pay.Balance() == 0 {
		log.Warn("the wallet is empty: paid relays will be left out; top it up with `obol wallet topup`")
	}
	return pay, nil
}

// print says how the client pays.
func (p *payFlags) print(w io.Writer, pay *wallet.Wallet) {
	if pay == nil {
		fmt.Fprintf(w, "  free relays only (give -mint to pay relays that charge)\n")
		return
	}
	fmt.Fprintf(w, "  paying relays from a wallet of %d %s (mint %s), at most %s per circuit\n",
		pay.Balance(), pay.Unit(), pay.MintURL(), formatMsat(p.budget))
}

// formatMsat shows an amount in sat when it is whole.
func formatMsat(msat uint64) string {
	if msat%1000 == 0 {
		return fmt.Sprintf("%d sat", msat/1000)
	}
	return fmt.Sprintf("%d msat", msat)
}

// links starts a link manager on the client's host.
func links(c *node.Client, log *slog.Logger) *link.Manager {
	m := link.NewManager(c.Node().Host(), link.Config{Logger: log})
	m.Start()
	return m
}
