package pay_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/wallet"
	"github.com/obolnet/obol/router"
)

// waitFor polls cond until it holds (state that changes in other
// processes' goroutines: relays' settlers, the mint).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allSettled reports whether every relay settled all its channels.
func (tn *testNet) allSettled() bool {
	got, settled := 0, 0
	for _, r := range tn.relays {
		for _, c := range r.ledger.Channels() {
			got++
			if c.Settled {
				settled++
			}
		}
	}
	return got == settled
}

// Over many circuits and streams, what the client spent is exactly what
// the relays received plus the mint's fees, each channel overpays by less
// than one unit, and every transfer arrives intact.
func TestAccountingExact(t *testing.T) {
	for _, fee := range []uint64{0, 100} {
		t.Run(fmt.Sprintf("fee=%dppk", fee), func(t *testing.T) { testAccounting(t, fee) })
	}
}

func testAccounting(t *testing.T, feePPK uint64) {
	ctx := context.Background()
	port, sum := dataServer(t)
	var offset atomic.Int64 // seconds the shared clock is ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load()) * time.Second) }
	tn := newTestNet(t, 3, netOpts{feePPK: feePPK, clock: clock})
	const topUp = 100000
	cl := tn.newClient(t, t.TempDir(), topUp)
	cl.capacity = 2 // so that channels fill up and circuits open more
	const circuits, streams, size = 4, 3, 384 << 10
	want := sum(size)
	var pcs []*paidCircuit
	var wg sync.WaitGroup
	errs := make(chan error, circuits*streams)
	for i := range circuits {
		pc := tn.build(t, cl, 300_000, []int{0, 1, 2}[i%3], []int{1, 2, 0}[i%3], []int{2, 0, 1}[i%3])
		pcs = append(pcs, pc)
		for range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				s, err := pc.Dial(sctx, "127.0.0.1", port)
				if err != nil {
					errs <- err
					return
				}
				defer s.Close()
				if got, err := get(s, size, nil); err != nil || got != want {
					errs <- fmt.Errorf("transfer: %v (hash ok %v)", err, got == want)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var signed, paidMsat uint64
	channels := 0
	for _, pc := range pcs {
		pc.Close()
		if err := <-pc.done; err != nil {
			t.Fatalf("payments: %v", err)
		}
		for _, p := range pc.allPayers() {
			a := pay.AccountingOf(p)
			if a.Signed*a.Unit < a.Msat || a.Signed*a.Unit-a.Msat >= a.Unit {
				t.Errorf("channel overpays: %d units for %d msat", a.Signed, a.Msat)
			}
			signed += a.Signed
			paidMsat += a.Msat
			channels++
		}
	}
	// The relays settle what they were paid; a channel opened as its
	// circuit closed may never have reached its relay: past the expiry
	// the client refunds it.
	waitFor(t, "relays to settle", func() bool { return tn.allSettled() })
	offset.Add(8 * 24 * 3600)
	waitFor(t, "relays to settle and forget every channel after the expiry", func() bool {
		for _, r := range tn.relays {
			if len(r.ledger.Channels()) > 0 {
				return false
			}
		}
		return true
	})
	var received, closes uint64
	for _, r := range tn.relays {
		for _, s := range r.settlements() {
			if s.Outcome != router.SettledClosed && s.Outcome != router.SettledUnpaid {
				t.Errorf("settlement outcome %d: %v", s.Outcome, s.Err)
			}
			closes += s.Amount
		}
		received += r.wallet.Balance()
	}
	rep, err := cl.paid.Settle(ctx)
	if err != nil || rep.Settled != channels || rep.Open != 0 {
		t.Fatalf("client settle: %+v, %v", rep, err)
	}
	spent := topUp - cl.wallet.Balance()
	fees := tn.mint.FeesCollected("sat") + rep.Dust // dust: left at the mint, worth less than its fee
	t.Logf("%d channels: client spent %d sat for %d msat of traffic; relays received %d sat (closes %d, signed %d); mint fees and dust %d sat (dust %d)",
		channels, spent, paidMsat, received, closes, signed, fees, rep.Dust)
	if channels <= circuits*3 {
		t.Fatalf("%d channels: none was renewed", channels)
	}
	if spent != received+fees {
		t.Fatalf("spent %d != received %d + fees %d", spent, received, fees)
	}
	// A relay's commitment outputs are worth its balance after the fee of
	// spending them (draft, "Amount selection"): exactly the balance
	// without fees.
	if received != closes {
		t.Fatalf("relays closed %d and hold %d, clients signed %d", closes, received, signed)
	}
	if feePPK == 0 && fees != 0 {
		t.Fatalf("fees %d without a fee", fees)
	}
}

// A client that stops paying is paused — its transfer stalls while
// another circuit on the same relays goes on — and torn down after the
// grace period.
func TestStopPayingPausesThenTearsDown(t *testing.T) {
	ctx := context.Background()
	port, sum := dataServer(t)
	tn := newTestNet(t, 3, netOpts{grace: 2 * time.Second})
	cl := tn.newClient(t, t.TempDir(), 100000)
	cheat := tn.build(t, cl, 0, 0, 1, 2)
	honest := tn.build(t, cl, 0, 0, 1, 2)

	s, err := cheat.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "channels to open", func() bool {
		for _, p := range cheat.payers {
			if pay.AccountingOf(p).Acked == 0 {
				return false
			}
		}
		return true
	})
	if err := cheat.stopPaying(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got int
	var last time.Time
	res := make(chan error, 1)
	go func() {
		_, err := get(s, 64<<20, func(n int) { mu.Lock(); got += n; last = time.Now(); mu.Unlock() })
		res <- err
	}()

	// The honest circuit moves 8 MiB meanwhile.
	const size = 8 << 20
	hs, err := honest.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := get(hs, size, nil); err != nil || h != sum(size) {
		t.Fatalf("honest transfer: %v", err)
	}
	select {
	case <-cheat.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("unpaid circuit not torn down")
	}
	var d *circuit.DestroyedError
	if !errors.As(cheat.Err(), &d) || d.Reason != circuit.DestroyPayment {
		t.Fatalf("unpaid circuit closed with %v", cheat.Err())
	}
	if err := <-res; err == nil {
		t.Fatal("unpaid transfer completed")
	}
	mu.Lock()
	stalled := time.Since(last)
	mu.Unlock()
	limit := testTerms.PrepayBytes + testTerms.FreeBytes + 1<<20
	t.Logf("unpaid circuit moved %d bytes, stalled for %v before teardown", got, stalled.Round(time.Millisecond))
	if uint64(got) > limit {
		t.Fatalf("unpaid circuit moved %d bytes (limit %d)", got, limit)
	}
	if honest.Err() != nil {
		t.Fatalf("honest circuit: %v", honest.Err())
	}
}

// A relay that claims more than the client signed is refused by the mint;
// the honest close of the same channel then goes through.
func TestRelayOverclaimRefused(t *testing.T) {
	ctx := context.Background()
	port, _ := dataServer(t)
	tn := newTestNet(t, 1, netOpts{noSettler: true}) // this test closes by hand
	cl := tn.newClient(t, t.TempDir(), 10000)
	pc := tn.build(t, cl, 0, 0)
	s, err := pc.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(s, 2<<20, nil); err != nil {
		t.Fatal(err)
	}
	r := tn.relays[0]
	waitFor(t, "an acknowledged payment", func() bool { return pay.AccountingOf(pc.payers[0]).Acked > 0 })
	id := r.ledger.Channels()[0].ID
	bal, sig, err := r.ledger.MarkClosed(id)
	if err != nil || bal == 0 {
		t.Fatal(bal, err)
	}
	ch, _ := r.ledger.Channel(id)
	if _, err := r.wallet.CloseChannel(ctx, ch, r.key, bal+1, sig); !errors.Is(err, payment.ErrBadSignature) {
		t.Fatalf("wallet closed for more than signed: %v", err)
	}
	// The relay forges the close itself: its signature on the commitment
	// of bal+1, the client's on bal.
	inputs, outputs, err := ch.CommitmentSwap(bal + 1)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ch.ReceiverSigner(r.key)
	mine, _ := signer.SignBalance(bal + 1)
	inputs[0].Witness = payment.Witness{Signatures: []string{hex.EncodeToString(sig[:]), hex.EncodeToString(mine[:])}}.String()
	var refused *wallet.MintError
	if _, err := wallet.NewMintClient(tn.mintURL, nil).Swap(ctx, inputs, outputs); !errors.As(err, &refused) {
		t.Fatalf("mint accepted a close for more than signed: %v", err)
	}
	if got, err := r.wallet.CloseChannel(ctx, ch, r.key, bal, sig); err != nil || got != bal {
		t.Fatalf("honest close: %d, %v", got, err)
	}
}

// The client's bill and the relay's are the same function.
func TestOwedAgrees(t *testing.T) {
	for _, terms := range []client.Terms{testTerms, pay.DefaultTerms, {PerMiB: 7, PerCircuit: 3}, {PerMiB: 1 << 40}} {
		m, _ := router.NewPaidMeter(router.PaidConfig{Ledger: &payment.Ledger{}, PerMiB: terms.PerMiB, PerCircuit: terms.PerCircuit})
		for _, b := range []uint64{0, 1, 1279, 1280, 1 << 20, 1<<20 + 1, 123456789, 1 << 44, 1 << 63} {
			if c, r := terms.Owed(b), m.Owed(b); c != r {
				t.Errorf("%+v at %d bytes: client %d, relay %d", terms, b, c, r)
			}
		}
	}
}

// A client refuses a path it cannot afford, and stops paying when its
// budget is spent: the relays then pause and tear the circuit down.
func TestBudget(t *testing.T) {
	ctx := context.Background()
	port, _ := dataServer(t)
	tn := newTestNet(t, 3, netOpts{grace: time.Second})
	cl := tn.newClient(t, t.TempDir(), 10000)
	bare := tn.build(t, nil, 0, 0, 1, 2)
	hop := client.HopPayment{Payer: cl.paid.HopPayer(tn.relays[0].relay(testTerms), 16), Terms: testTerms}
	if _, err := client.NewPayments(bare.Circuit, client.PayConfig{Hops: []client.HopPayment{hop, hop, hop}, Budget: 4000}); !errors.Is(err, client.ErrUnaffordable) {
		t.Fatalf("unaffordable path: %v", err)
	}

	const budget = 6000 // msat: 1 000 per circuit, then about 4 MiB
	pc := tn.build(t, cl, budget, 0)
	s, err := pc.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(s, 32<<20, nil); err == nil {
		t.Fatal("32 MiB moved on a budget of 5 MiB")
	}
	if err := <-pc.done; !errors.Is(err, client.ErrBudget) {
		t.Fatalf("payments ended with %v", err)
	}
	<-pc.Done()
	var d *circuit.DestroyedError
	if !errors.As(pc.Err(), &d) || d.Reason != circuit.DestroyPayment {
		t.Fatalf("circuit closed with %v", pc.Err())
	}
	if a := pay.AccountingOf(pc.payers[0]); a.Msat > budget {
		t.Fatalf("paid %d msat on a budget of %d", a.Msat, budget)
	}
}

// With a prepay window far below what is in flight, relays pause the
// circuit again and again; payments still reach paused hops, held cells
// are forwarded in order, and the transfer arrives byte for byte.
func TestPausesResumeExact(t *testing.T) {
	ctx := context.Background()
	port, sum := dataServer(t)
	terms := client.Terms{PerMiB: 1000, PerCircuit: 1000, PrepayBytes: 32 << 10, FreeBytes: 16 << 10}
	tn := newTestNet(t, 3, netOpts{terms: terms, grace: 30 * time.Second})
	cl := tn.newClient(t, t.TempDir(), 20000)
	pc := tn.build(t, cl, 0, 0, 1, 2)
	const size = 16 << 20
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pc.Dial(ctx, "127.0.0.1", port)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			if got, err := get(s, size, nil); err != nil || got != sum(size) {
				t.Errorf("transfer: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := pc.stopPaying(); err != nil {
		t.Fatalf("payments: %v", err)
	}
	var pauses uint64
	for _, r := range tn.relays {
		pauses += r.meter.Pauses()
	}
	t.Logf("%d pauses for payment over 2 × 16 MiB", pauses)
	if pauses == 0 {
		t.Fatal("no circuit paused: the test tests nothing")
	}
}
