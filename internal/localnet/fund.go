package localnet

import (
	"context"

	"github.com/obolnet/obol/pay"
)

// FundWallet tops the wallet in dir up with amount sat from a test mint,
// which the wallet reaches directly.
func FundWallet(ctx context.Context, dir, mintURL string, amount uint64) error {
	w, err := pay.OpenWallet(pay.WalletConfig{Dir: dir, Mint: mintURL, DirectMintConnectionUnsafe: true})
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Load(ctx); err != nil {
		return err
	}
	_, err = w.TopUp(ctx, amount)
	return err
}
