package wallet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/mint"
)

func startMint(t *testing.T, feePPK uint64) (*mint.Mint, string) {
	t.Helper()
	s := mint.StartTest(t, mint.Config{Seed: []byte("wallet test mint seed"), Units: []mint.UnitConfig{{Unit: "sat", Order: 32, InputFeePPK: feePPK}}}, mint.ServerConfig{})
	return s.Mint, s.URL
}

func newWallet(t *testing.T, url, dir, seed string, hc *http.Client) *Wallet {
	t.Helper()
	w, err := Open(Config{Mint: url, Seed: []byte(seed + " seed padding"), Dir: dir, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWalletFlows(t *testing.T) {
	ctx := context.Background()
	m, url := startMint(t, 100)
	alice := newWallet(t, url, t.TempDir(), "alice", nil)
	bob := newWallet(t, url, t.TempDir(), "bob", nil)
	if _, err := alice.TopUp(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if alice.Balance() != 1000 {
		t.Fatalf("balance %d", alice.Balance())
	}
	token, err := alice.Send(ctx, 300, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bob.Receive(ctx, token, nil)
	if err != nil || got != 299 || bob.Balance() != 299 {
		t.Fatalf("receive: %d, %v, balance %d", got, err, bob.Balance())
	}
	// Alice paid one fee for the send swap: 1000 - 300 - 1.
	if alice.Balance() != 699 {
		t.Fatalf("alice balance %d", alice.Balance())
	}
	if _, err := bob.Receive(ctx, token, nil); err == nil {
		t.Fatal("token received twice")
	}

	// P2PK: a token locked to Bob's key needs it.
	key, _ := btcec.NewPrivateKey()
	locked, err := alice.Send(ctx, 50, key.PubKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Receive(ctx, locked, nil); err == nil {
		t.Fatal("locked token received without the key")
	}
	if got, err := bob.Receive(ctx, locked, key); err != nil || got != 49 {
		t.Fatalf("locked receive: %d, %v", got, err)
	}

	// Melt to an invoice of the mint.
	inv, _, _ := m.Lightning().CreateInvoice(100_000)
	before := alice.Balance()
	q, err := alice.Withdraw(ctx, inv)
	if err != nil || q.State != "PAID" {
		t.Fatalf("withdraw: %v", err)
	}
	if spent := before - alice.Balance(); spent < 100 || spent > 102 {
		t.Fatalf("withdraw of 100 cost %d", spent)
	}
	if h := alice.History(); len(h) != 4 || h[0].Kind != "mint" || h[3].Kind != "melt" {
		t.Fatalf("history %+v", h)
	}
}

// flaky forwards requests to the mint, but for one path either loses the
// answer (the mint acted, the wallet never heard: a crash or a reset) or
// drops the request before it reaches the mint.
type flaky struct {
	path    atomic.Value // string
	drop    atomic.Bool
	notSent atomic.Bool // drop, saying that the request never left
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	hit := f.path.Load() == r.URL.Path
	if hit && f.notSent.Load() {
		return nil, fmt.Errorf("%w: no circuit to the mint", ErrNotSent)
	}
	if hit && f.drop.Load() {
		return nil, errors.New("network down")
	}
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && hit {
		res.Body.Close()
		return nil, errors.New("connection reset")
	}
	return res, err
}

// After a lost answer or a request that never left, a restart and Recover
// leave no proof lost.
func TestWalletRecovery(t *testing.T) {
	ctx := context.Background()
	_, url := startMint(t, 0)
	for _, tc := range []struct {
		name, path string
		drop       bool
		do         func(w *Wallet) error
		want       uint64 // balance after recovery
	}{
		// The token was never handed out: its proofs come back.
		{"send answer lost", "/v1/swap", false, func(w *Wallet) error { _, err := w.Send(ctx, 100, nil); return err }, 500},
		{"send never sent", "/v1/swap", true, func(w *Wallet) error { _, err := w.Send(ctx, 100, nil); return err }, 500},
		{"mint answer lost", "/v1/mint/bolt11", false, func(w *Wallet) error { _, err := w.TopUp(ctx, 64); return err }, 564},
		{"withdraw answer lost", "/v1/melt/bolt11", false, func(w *Wallet) error {
			_, err := w.Withdraw(ctx, "lnbcrt10000p1qqqq") // 1 sat
			return err
		}, 499},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tr := &flaky{}
			tr.path.Store("")
			w := newWallet(t, url, dir, tc.name, &http.Client{Transport: tr})
			if _, err := w.TopUp(ctx, 500); err != nil {
				t.Fatal(err)
			}
			tr.path.Store(tc.path)
			tr.drop.Store(tc.drop)
			if err := tc.do(w); err == nil {
				t.Fatal("operation succeeded with a broken network")
			}
			if w.Pending() != 1 {
				t.Fatalf("%d pending", w.Pending())
			}
			w.Close() // crash

			w2 := newWallet(t, url, dir, tc.name, nil)
			left, err := w2.Recover(ctx)
			if err != nil || left != 0 {
				t.Fatalf("recover: %d left, %v", left, err)
			}
			if w2.Balance() != tc.want {
				t.Fatalf("balance after recovery %d, want %d", w2.Balance(), tc.want)
			}
		})
	}
}

// A wallet funds a channel; the relay's ledger accepts it.
func TestWalletFundsChannel(t *testing.T) {
	ctx := context.Background()
	_, url := startMint(t, 100)
	w := newWallet(t, url, t.TempDir(), "funder", nil)
	if _, err := w.TopUp(ctx, 2000); err != nil {
		t.Fatal(err)
	}
	ks, _ := w.Keyset()
	sender, _ := payment.ChannelKey([]byte("funder seed padding"), 0)
	relay, _ := btcec.NewPrivateKey()
	funding, _ := payment.FundingAmountFor(1000, ks, 0, 1<<20)
	now := time.Now()
	params := payment.ChannelParams{
		Mint: url, Unit: "sat", Capacity: 1000, FundingAmount: funding, KeysetID: ks.ID, InputFeePPK: ks.InputFeePPK,
		SetupTime: uint64(now.Unix()), ExpiryTime: uint64(now.Add(6 * time.Hour).Unix()),
		Sender: sender.PubKey(), Receiver: relay.PubKey(),
	}
	ch, err := payment.NewChannel(params, ks, payment.ChannelSecret(sender, relay.PubKey()))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Fund(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if len(w.Funded(ch.ID())) != len(ch.FundingOutputs()) {
		t.Fatal("funding proofs not recorded")
	}
	ledger, _ := payment.NewLedger(payment.LedgerConfig{ReceiverKey: relay,
		Keyset: func(string, string, string) (payment.Keyset, error) { return ks, nil }})
	p, _ := payment.NewChannelPayer(ch, sender)
	open, _ := p.Open()
	if _, _, err := ledger.Handle(open); err != nil {
		t.Fatalf("relay refused the funding: %v", err)
	}
	if w.Balance() != 2000-funding-1 {
		t.Fatalf("balance %d after funding %d", w.Balance(), funding)
	}
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// fundedChannel builds a wallet that funded a channel of capacity 1000 to a
// relay, with a mint and a clock shared by all.
func fundedChannel(t *testing.T) (*Wallet, *payment.Channel, *btcec.PrivateKey, *btcec.PrivateKey, *clock) {
	t.Helper()
	ck := &clock{now: time.Unix(1_790_000_000, 0)}
	srv := mint.StartTest(t, mint.Config{Seed: []byte("wallet test mint seed"), Now: ck.Now,
		Units: []mint.UnitConfig{{Unit: "sat", Order: 32, InputFeePPK: 100}}}, mint.ServerConfig{})
	w, err := Open(Config{Mint: srv.URL, Seed: []byte("settling wallet seed"), Now: ck.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.TopUp(ctx, 2000); err != nil {
		t.Fatal(err)
	}
	ks, _ := w.Keyset()
	sender, _ := payment.ChannelKey([]byte("settling wallet seed"), 7)
	relay, _ := btcec.NewPrivateKey()
	funding, _ := payment.FundingAmountFor(1000, ks, 0, 1<<20)
	params := payment.ChannelParams{
		Mint: srv.URL, Unit: "sat", Capacity: 1000, FundingAmount: funding, KeysetID: ks.ID, InputFeePPK: ks.InputFeePPK,
		SetupTime: uint64(ck.Now().Unix()), ExpiryTime: uint64(ck.Now().Add(6 * time.Hour).Unix()),
		Sender: sender.PubKey(), Receiver: relay.PubKey(),
	}
	ch, err := payment.NewChannel(params, ks, payment.ChannelSecret(sender, relay.PubKey()))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Fund(ctx, ch); err != nil {
		t.Fatal(err)
	}
	return w, ch, sender, relay, ck
}

// After the relay closes at 300, the sender takes back its share.
func TestWalletReclaimsAfterClose(t *testing.T) {
	ctx := context.Background()
	w, ch, sender, relay, _ := fundedChannel(t)
	if _, err := w.Settle(ctx, ch, sender); !errors.Is(err, ErrChannelOpen) {
		t.Fatalf("settle of an open channel: %v", err)
	}
	signer, _ := ch.SenderSigner(sender)
	sig, _ := signer.SignBalance(300)
	rs, _ := ch.ReceiverSigner(relay)
	inputs, outputs, err := rs.CloseSwap(300, sig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.Swap(ctx, inputs, outputs); err != nil {
		t.Fatalf("relay close: %v", err)
	}
	before := w.Balance()
	split, _ := ch.Split(300)
	got, err := w.Settle(ctx, ch, sender)
	if err != nil {
		t.Fatal(err)
	}
	outs, _ := ch.CommitmentOutputs(300)
	n := 0
	for _, o := range outs {
		if o.Context == "sender" {
			n++
		}
	}
	want := split.Sender - (uint64(n)*100+999)/1000
	if got != want || w.Balance() != before+want {
		t.Fatalf("reclaimed %d (balance +%d), want %d", got, w.Balance()-before, want)
	}
	if len(w.Funded(ch.ID())) != 0 {
		t.Fatal("settled channel still recorded")
	}
}

// A channel the relay never closed comes back whole after its expiry.
func TestWalletRefundsAfterExpiry(t *testing.T) {
	ctx := context.Background()
	w, ch, sender, _, ck := fundedChannel(t)
	ck.Add(6 * time.Hour)
	before := w.Balance()
	got, err := w.Settle(ctx, ch, sender)
	if err != nil {
		t.Fatal(err)
	}
	fee := (uint64(len(ch.FundingProofs()))*100 + 999) / 1000
	if got != ch.Params().FundingAmount-fee || w.Balance() != before+got {
		t.Fatalf("refunded %d", got)
	}
}

// The relay's wallet closes a channel and can spend what it was paid.
func TestWalletClosesChannelAsRelay(t *testing.T) {
	ctx := context.Background()
	w, ch, sender, relayKey, ck := fundedChannel(t)
	rw, err := Open(Config{Mint: ch.Params().Mint, Seed: []byte("relay wallet seed!!"), Now: ck.Now, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if err := rw.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// The relay sees the channel as the ledger derived it.
	relayCh, err := payment.OpenChannel(mustOpen(t, ch, sender), relayKey, mustKeyset(t, rw))
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ch.SenderSigner(sender)
	sig, _ := signer.SignBalance(400)
	got, err := rw.CloseChannel(ctx, relayCh, relayKey, 400, sig)
	if err != nil {
		t.Fatal(err)
	}
	split, _ := relayCh.Split(400)
	if got != split.Receiver || rw.Balance() != got {
		t.Fatalf("relay got %d, balance %d, want %d", got, rw.Balance(), split.Receiver)
	}
	// Its proofs carry their witnesses: it can spend them.
	if _, err := rw.Send(ctx, 100, nil); err != nil {
		t.Fatalf("spend channel proofs: %v", err)
	}
	// And the sender reclaims the rest.
	if back, err := w.Settle(ctx, ch, sender); err != nil || back == 0 {
		t.Fatalf("sender reclaim: %d, %v", back, err)
	}
}

func mustOpen(t *testing.T, ch *payment.Channel, sender *btcec.PrivateKey) *payment.ChannelOpen {
	t.Helper()
	s, _ := ch.SenderSigner(sender)
	m, err := payment.NewChannelOpen(ch, s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustKeyset(t *testing.T, w *Wallet) payment.Keyset {
	t.Helper()
	ks, err := w.Keyset()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}
