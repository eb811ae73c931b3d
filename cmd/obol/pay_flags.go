package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/payment/wallet"
)

// payFlags are how a client (proxy, serve) pays relays that charge.
type payFlags struct {
	mint      string // "": use free relays only
	walletDir string
	budget    uint64 // msat per circuit
	direct    bool   // reach the mint from this host's address
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
	fs.BoolVar(&p.direct, "direct-mint-connection-unsafe", false, "with -mint, reach the mint straight from this host's address instead of through circuits: the mint learns who pays (local test networks only)")
}

func (p *payFlags) check(fs *flag.FlagSet) (int, bool) {
	if p.mint != "" && p.walletDir == "" {
		return usageError(fs, "wallet-dir", "", "no home directory to default to; give the wallet's directory"), false
	}
	return 0, true
}

// config is how an obol client pays; nil without -mint.
func (p *payFlags) config() *obol.PayConfig {
	if p.mint == "" {
		return nil
	}
	return &obol.PayConfig{WalletDir: p.walletDir, Mint: p.mint, Budget: p.budget, DirectMintConnectionUnsafe: p.direct}
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
