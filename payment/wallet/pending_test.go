package wallet

import (
	"context"
	"net/http"
	"testing"
)

// A wallet whose swap answer was lost (the mint spent the inputs, the
// wallet never heard) does not spend those inputs again before Recover:
// the next operations succeed on other proofs, and Recover then counts
// every proof once.
func TestWalletSkipsPendingInputs(t *testing.T) {
	ctx := context.Background()
	_, url := startMint(t, 0)
	tr := &flaky{}
	tr.path.Store("")
	w := newWallet(t, url, t.TempDir(), "pending inputs", &http.Client{Transport: tr})
	if _, err := w.TopUp(ctx, 500); err != nil { // 256+128+64+32+16+4
		t.Fatal(err)
	}
	tr.path.Store("/v1/swap")
	if _, err := w.Send(ctx, 100, nil); err == nil {
		t.Fatal("send succeeded with its answer lost")
	}
	tr.path.Store("")
	for i := range 2 {
		if _, err := w.Send(ctx, 50, nil); err != nil {
			t.Fatalf("send %d after a lost answer: %v", i, err)
		}
	}
	if left, err := w.Recover(ctx); err != nil || left != 0 {
		t.Fatalf("recover: %d left, %v", left, err)
	}
	if got := w.Balance(); got != 400 {
		t.Fatalf("balance %d after sending 2×50 of 500 (the lost send kept), want 400", got)
	}
}
