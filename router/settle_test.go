package router_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/mint"
	"github.com/obolnet/obol/payment/wallet"
	"github.com/obolnet/obol/router"
)

// settleFixture: a test mint over HTTP with a clock, a client wallet that
// funded a channel to the relay and paid 5 sat on it, and the relay's
// ledger and wallet.
type settleFixture struct {
	now     atomic.Int64 // the mint's clock, Unix seconds
	url     string
	down    atomic.Int32 // the mint fails this many more requests
	client  *wallet.Wallet
	ch      *payment.Channel
	sender  *btcec.PrivateKey
	relay   *btcec.PrivateKey
	ledger  *payment.Ledger
	rwallet *wallet.Wallet
}

func newSettleFixture(t *testing.T) *settleFixture {
	ctx := context.Background()
	f := &settleFixture{}
	f.now.Store(time.Now().Unix())
	clock := func() time.Time { return time.Unix(f.now.Load(), 0) }
	away := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if f.down.Add(-1) >= 0 {
				http.Error(w, "away", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	f.url = mint.StartTest(t, mint.Config{Seed: []byte("router settle test mint seed"), Now: clock}, mint.ServerConfig{Wrap: away}).URL
	open := func(seed string) *wallet.Wallet {
		w, err := wallet.Open(wallet.Config{Mint: f.url, Seed: []byte(seed), Dir: t.TempDir(), Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		if err := w.Load(ctx); err != nil {
			t.Fatal(err)
		}
		return w
	}
	f.client, f.rwallet = open("settle test client seed"), open("settle test relay seed!")
	if _, err := f.client.TopUp(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	ks, _ := f.client.Keyset()
	f.relay, _ = btcec.NewPrivateKey()
	f.sender, _ = payment.ChannelKey([]byte("settle test channel seed"), 7)
	funding, _ := payment.FundingAmountFor(100, ks, 0, 1<<20)
	now := time.Now()
	var err error
	f.ch, err = payment.NewChannel(payment.ChannelParams{Mint: f.url, Unit: "sat", Capacity: 100, FundingAmount: funding,
		KeysetID: ks.ID, SetupTime: uint64(now.Unix()), ExpiryTime: uint64(now.Add(90 * time.Minute).Unix()),
		Sender: f.sender.PubKey(), Receiver: f.relay.PubKey()}, ks, payment.ChannelSecret(f.sender, f.relay.PubKey()))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.client.Fund(ctx, f.ch); err != nil {
		t.Fatal(err)
	}
	f.ledger, _ = payment.NewLedger(payment.LedgerConfig{ReceiverKey: f.relay,
		Keyset: func(string, string, string) (payment.Keyset, error) { return ks, nil }})
	payer, _ := payment.NewChannelPayer(f.ch, f.sender)
	msg, _ := payer.Open()
	if _, _, err := f.ledger.Handle(msg); err != nil {
		t.Fatal(err)
	}
	msg, _ = payer.PayMsat(5000)
	if _, _, err := f.ledger.Handle(msg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *settleFixture) settler(t *testing.T, on func(router.Settlement)) *router.Settler {
	s, err := router.NewSettler(router.SettlerConfig{Ledger: f.ledger, Wallet: f.rwallet, ReceiverKey: f.relay,
		Delay: time.Millisecond, Backoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, OnSettled: on})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A channel close to its expiry is closed; while the mint is away the
// settler backs off and retries, and the relay is paid what was signed.
func TestSettlerRetriesUntilClosed(t *testing.T) {
	f := newSettleFixture(t)
	f.down.Store(5)
	got := make(chan router.Settlement, 1)
	s := f.settler(t, func(r router.Settlement) { got <- r })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	r := <-got
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.Outcome != router.SettledClosed || r.Amount != 5 || f.rwallet.Balance() != 5 {
		t.Fatalf("settlement %+v, relay balance %d", r, f.rwallet.Balance())
	}
	if back, err := f.client.Settle(context.Background(), f.ch, f.sender); err != nil || back == 0 {
		t.Fatalf("client reclaim: %d, %v", back, err)
	}
}

// A funding token the client spent elsewhere (here: refunded after the
// expiry, before the relay closed) is detected at settlement.
func TestSettlerDetectsSpentFunding(t *testing.T) {
	f := newSettleFixture(t)
	f.now.Add(2 * 3600) // past the expiry: the refund path opens
	if back, err := f.client.Settle(context.Background(), f.ch, f.sender); err != nil || back == 0 {
		t.Fatalf("client refund: %d, %v", back, err)
	}
	var got []router.Settlement
	s := f.settler(t, func(r router.Settlement) { got = append(got, r) })
	if err := s.Batch(context.Background()); err != nil {
		t.Fatal(err)
	}
	var refused *wallet.MintError
	if len(got) != 1 || got[0].Outcome != router.SettledSpent || !errors.As(got[0].Err, &refused) {
		t.Fatalf("settlements %+v", got)
	}
	if c := f.ledger.Channels(); len(c) != 1 || !c[0].Settled {
		t.Fatalf("ledger %+v", c)
	}
}

// Flush, at a relay's shutdown, closes channels that are not yet due; if
// the mint is away it fails and a later Flush finishes the job.
func TestSettlerFlush(t *testing.T) {
	f := newSettleFixture(t)
	var got []router.Settlement
	s, err := router.NewSettler(router.SettlerConfig{Ledger: f.ledger, Wallet: f.rwallet, ReceiverKey: f.relay,
		CloseBefore: 15 * time.Minute, OnSettled: func(r router.Settlement) { got = append(got, r) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Batch(ctx); err != nil || len(got) != 0 {
		t.Fatalf("batch settled %d channels not yet due: %v", len(got), err)
	}
	f.down.Store(1 << 20)
	if err := s.Flush(ctx); err == nil {
		t.Fatal("flush succeeded with the mint away")
	}
	f.down.Store(0)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if f.rwallet.Balance() != 5 {
		t.Fatalf("relay balance %d after flush, want 5 (settlements %+v)", f.rwallet.Balance(), got)
	}
	for _, c := range f.ledger.Channels() {
		if !c.Settled {
			t.Fatalf("channel %x left unsettled", c.ID)
		}
	}
}

// A relay restarted after a crash closes the channels its ledger restored
// after the random delay, as for circuits that ended: their circuits died
// with the crash, and no update can reach them again.
func TestSettlerClosesRestoredChannels(t *testing.T) {
	f := newSettleFixture(t)
	now := time.Now()
	var got []router.Settlement
	s, err := router.NewSettler(router.SettlerConfig{Ledger: f.ledger, Wallet: f.rwallet, ReceiverKey: f.relay,
		Delay: time.Minute, MaxDelay: time.Minute, CloseBefore: 15 * time.Minute, Now: func() time.Time { return now },
		OnSettled: func(r router.Settlement) { got = append(got, r) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Batch(ctx); err != nil || len(got) != 0 {
		t.Fatalf("batch settled %d channels before the delay: %v", len(got), err)
	}
	now = now.Add(time.Minute)
	if err := s.Batch(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Outcome != router.SettledClosed || f.rwallet.Balance() != 5 {
		t.Fatalf("settlements %+v, relay balance %d", got, f.rwallet.Balance())
	}
}
