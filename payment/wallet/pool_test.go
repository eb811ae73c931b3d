package wallet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/payment"
)

// A funding from the pool spends exactly the funding and its fee: the
// swap has no change output. Without the denominations, FundExact refuses
// and calls nothing; Split prepares them ahead, keeping what it is told to.
func TestWalletFundsExactFromPool(t *testing.T) {
	ctx := context.Background()
	for _, fee := range []uint64{0, 100, 999} {
		_, url := startMint(t, fee)
		w := newWallet(t, url, t.TempDir(), "pool", nil)
		if _, err := w.TopUp(ctx, 4096); err != nil {
			t.Fatal(err)
		}
		ks, _ := w.Keyset()
		sender, _ := payment.ChannelKey([]byte("pool seed padding"), 0)
		relay, _ := btcec.NewPrivateKey()
		funding, _ := payment.FundingAmountFor(300, ks, 0, 1<<20)
		now := time.Now()
		ch, err := payment.NewChannel(payment.ChannelParams{
			Mint: url, Unit: "sat", Capacity: 300, FundingAmount: funding, KeysetID: ks.ID, InputFeePPK: ks.InputFeePPK,
			SetupTime: uint64(now.Unix()), ExpiryTime: uint64(now.Add(6 * time.Hour).Unix()),
			Sender: sender.PubKey(), Receiver: relay.PubKey(),
		}, ks, payment.ChannelSecret(sender, relay.PubKey()))
		if err != nil {
			t.Fatal(err)
		}
		var total uint64
		for _, o := range ch.FundingOutputs() {
			total += o.Amount
		}
		bundle, err := w.Bundle(total)
		if err != nil || bundle == nil {
			t.Fatalf("fee %d: bundle of %d: %v, %v", fee, total, bundle, err)
		}
		var sum uint64
		for _, a := range bundle {
			sum += a
		}
		if sum != total+w.fee(len(bundle)) {
			t.Fatalf("fee %d: bundle %v of %d for %d and the fee of %d inputs", fee, bundle, sum, total, len(bundle))
		}
		before := w.History()
		if err := w.FundExact(ctx, ch); !errors.Is(err, ErrNoBundle) {
			t.Fatalf("fee %d: FundExact from one 4096 proof: %v, want ErrNoBundle", fee, err)
		}
		if len(w.History()) != len(before) || w.Pending() != 0 {
			t.Fatalf("fee %d: a refused FundExact left an operation", fee)
		}
		if err := w.Split(ctx, bundle, nil); err != nil {
			t.Fatal(err)
		}
		bal := w.Balance()
		if err := w.Split(ctx, []uint64{3}, nil); err == nil {
			t.Fatal("a split into a non-power of two was accepted")
		}
		if err := w.Split(ctx, []uint64{1 << 20}, nil); !errors.Is(err, ErrInsufficient) {
			t.Fatalf("a split beyond the balance: %v", err)
		}
		if err := w.FundExact(ctx, ch); err != nil {
			t.Fatalf("fee %d: FundExact after the split: %v", fee, err)
		}
		if got := bal - w.Balance(); got != sum {
			t.Fatalf("fee %d: the funding took %d, want exactly the bundle's %d", fee, got, sum)
		}
		if len(w.Funded(ch.ID())) != len(ch.FundingOutputs()) {
			t.Fatal("funding proofs not recorded")
		}
	}
}

// Split spends none of the proofs it is told to keep.
func TestWalletSplitKeeps(t *testing.T) {
	ctx := context.Background()
	_, url := startMint(t, 0)
	w := newWallet(t, url, t.TempDir(), "keeps", nil)
	if _, err := w.TopUp(ctx, 64+8); err != nil {
		t.Fatal(err)
	}
	if err := w.Split(ctx, []uint64{16, 16}, map[uint64]int{8: 1, 64: 1}); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("a split of kept proofs: %v", err)
	}
	if err := w.Split(ctx, []uint64{2, 2}, map[uint64]int{64: 1}); err != nil {
		t.Fatal(err)
	}
	d := w.Denominations()
	if d[64] != 1 || d[2] != 2 || d[8] != 0 || w.Balance() != 72 {
		t.Fatalf("after the split: %v, balance %d", d, w.Balance())
	}
}
