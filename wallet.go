package obol

import (
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment/wallet"
)

// WalletConfig locates a wallet directory: its seed, its journal of ecash
// and the URL of its one mint.
type WalletConfig = pay.WalletConfig

// Wallet holds Cashu ecash of one mint: top it up, check its balance,
// send and receive tokens. Load it (which contacts the mint) before use
// and Close it after; only one process may have a wallet open.
type Wallet = wallet.Wallet

// OpenWallet opens (or creates) the wallet in cfg.Dir. It does not
// contact the mint. The wallet a Client pays from is Client.Wallet.
func OpenWallet(cfg WalletConfig) (*Wallet, error) { return pay.OpenWallet(cfg) }
