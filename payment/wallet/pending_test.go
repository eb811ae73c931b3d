package wallet

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/payment"
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

// A funding whose caller gave up while it waited for the wallet is not
// sent and leaves nothing pending; one that is sent runs to the mint's
// answer even if its caller gives up meanwhile, so that its inputs are
// never held as pending, spendable by no other funding, until a recovery.
func TestFundingEndsCleanlyWhenItsCallerGivesUp(t *testing.T) {
	_, url := startMint(t, 0)
	slow := &http.Client{Transport: slowTransport{}}
	w := newWallet(t, url, t.TempDir(), "caller gives up", slow)
	if _, err := w.TopUp(context.Background(), 2000); err != nil {
		t.Fatal(err)
	}
	newCh := func(i uint64) *payment.Channel {
		ks, _ := w.Keyset()
		sender, _ := payment.ChannelKey([]byte("caller gives up seed padding"), i)
		relay, _ := btcec.NewPrivateKey()
		funding, _ := payment.FundingAmountFor(100, ks, 0, 1<<20)
		now := time.Now()
		ch, err := payment.NewChannel(payment.ChannelParams{Mint: url, Unit: "sat", Capacity: 100, FundingAmount: funding,
			KeysetID: ks.ID, InputFeePPK: ks.InputFeePPK, SetupTime: uint64(now.Unix()),
			ExpiryTime: uint64(now.Add(6 * time.Hour).Unix()), Sender: sender.PubKey(), Receiver: relay.PubKey()},
			ks, payment.ChannelSecret(sender, relay.PubKey()))
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Fund(gone, newCh(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("a funding whose caller is gone: %v, want its context's error", err)
	}
	if w.Pending() != 0 {
		t.Fatalf("a funding never sent left %d operations pending", w.Pending())
	}

	ctx, cancel := context.WithCancel(context.Background())
	ch := newCh(1)
	done := make(chan error, 1)
	go func() { done <- w.Fund(withSent(ctx, cancel), ch) }()
	if err := <-done; err != nil {
		t.Fatalf("a funding sent before its caller gave up: %v", err)
	}
	if w.Pending() != 0 || w.Funded(ch.ID()) == nil {
		t.Fatalf("after its answer: %d pending, funded %v", w.Pending(), w.Funded(ch.ID()) != nil)
	}
}

// sentKey marks a context whose cancel slowTransport calls once the
// request is on its way: the caller gives up while the mint works.
type sentKey struct{}

func withSent(ctx context.Context, cancel context.CancelFunc) context.Context {
	return context.WithValue(ctx, sentKey{}, cancel)
}

type slowTransport struct{}

func (slowTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if cancel, ok := r.Context().Value(sentKey{}).(context.CancelFunc); ok && r.URL.Path == "/v1/swap" {
		cancel()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// An operation whose request never left (ErrNotSent: no connection to the
// mint could be opened) is aborted at once: nothing is left pending, and
// its inputs are spendable by the next operation without a recovery.
func TestRequestNeverSentLeavesNothingPending(t *testing.T) {
	ctx := context.Background()
	_, url := startMint(t, 0)
	tr := &flaky{}
	tr.path.Store("")
	w := newWallet(t, url, t.TempDir(), "never sent", &http.Client{Transport: tr})
	if _, err := w.TopUp(ctx, 128); err != nil { // one proof
		t.Fatal(err)
	}
	tr.path.Store("/v1/swap")
	tr.notSent.Store(true)
	if _, err := w.Send(ctx, 100, nil); !errors.Is(err, ErrNotSent) {
		t.Fatalf("send without a way to the mint: %v, want ErrNotSent", err)
	}
	if n := w.Pending(); n != 0 {
		t.Fatalf("a request that never left left %d operations pending", n)
	}
	tr.path.Store("")
	if _, err := w.Send(ctx, 100, nil); err != nil {
		t.Fatalf("send of the same proof once the mint is reachable: %v", err)
	}
	if got := w.Balance(); got != 28 {
		t.Fatalf("balance %d after sending 100 of 128, want 28", got)
	}
}
