package wallet

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// gate holds every swap at the transport until the test lets it go, and
// tells the test when one arrives.
type gate struct {
	arrived chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{arrived: make(chan struct{}, 16), release: make(chan struct{}, 16)}
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v1/swap" {
		g.arrived <- struct{}{}
		select {
		case <-g.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// gatedWallet is a wallet in dir holding amount, whose swaps wait at g,
// and the URL of its mint.
func gatedWallet(t *testing.T, ctx context.Context, dir, seed string, amount uint64) (*Wallet, *gate, string) {
	_, url := startMint(t, 0)
	g := newGate()
	w := newWallet(t, url, dir, seed, &http.Client{Transport: g})
	if _, err := w.TopUp(ctx, amount); err != nil {
		t.Fatal(err)
	}
	return w, g, url
}

// Two operations on disjoint proofs are with the mint at the same time:
// the second is sent while the first waits for its answer. Neither spends
// the other's inputs, and the balance is exact afterwards.
func TestOperationsRunConcurrently(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, g, _ := gatedWallet(t, ctx, t.TempDir(), "concurrent operations", 3072) // 2048 + 1024
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, amount := range []uint64{1000, 500} { // each covered by either proof
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.Send(ctx, amount, nil)
			errs <- err
		}()
	}
	for i := range 2 {
		select {
		case <-g.arrived:
		case <-ctx.Done():
			t.Fatalf("only %d of 2 swaps reached the mint while the first waited for its answer", i)
		}
	}
	g.release <- struct{}{}
	g.release <- struct{}{}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := w.Balance(); got != 1572 {
		t.Fatalf("balance %d after sending 1000 and 500 of 3072, want 1572", got)
	}
	if w.Pending() != 0 {
		t.Fatalf("%d operations pending", w.Pending())
	}
}

// An operation that needs proofs held by another one under way waits for
// that one's change, instead of failing as if the wallet were short.
func TestOperationWaitsForChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, g, _ := gatedWallet(t, ctx, t.TempDir(), "waits for change", 1024) // one proof
	first := make(chan error, 1)
	go func() { _, err := w.Send(ctx, 100, nil); first <- err }()
	<-g.arrived // the only proof is the first send's input now
	second := make(chan error, 1)
	go func() { _, err := w.Send(ctx, 200, nil); second <- err }()
	g.release <- struct{}{} // the first send's answer; its change comes back
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.arrived:
	case <-ctx.Done():
		t.Fatal("the second send never reached the mint")
	}
	g.release <- struct{}{}
	if err := <-second; err != nil {
		t.Fatalf("a send waiting for another's change: %v", err)
	}
	if got := w.Balance(); got != 724 {
		t.Fatalf("balance %d, want 724", got)
	}
}

// Recover leaves alone an operation whose request is under way: it is
// pending, but its own answer settles it.
func TestRecoverLeavesOperationUnderWay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, g, _ := gatedWallet(t, ctx, t.TempDir(), "recover under way", 1024)
	sent := make(chan error, 1)
	go func() { _, err := w.Send(ctx, 100, nil); sent <- err }()
	<-g.arrived
	left, err := w.Recover(ctx)
	if err != nil || left != 0 || w.Pending() != 1 {
		t.Fatalf("recover during a send: %d left to recover, %d pending, %v; want the send left untouched and not counted", left, w.Pending(), err)
	}
	g.release <- struct{}{}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if got, p := w.Balance(), w.Pending(); got != 924 || p != 0 {
		t.Fatalf("balance %d with %d pending, want 924 and 0", got, p)
	}
}

// Close waits for a request under way, so that its answer is journaled:
// a wallet opened again from the directory holds its result, with nothing
// pending.
func TestCloseWaitsForOperationUnderWay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	w, g, url := gatedWallet(t, ctx, dir, "close under way", 1024)
	sent := make(chan error, 1)
	go func() { _, err := w.Send(ctx, 100, nil); sent <- err }()
	<-g.arrived
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	g.release <- struct{}{}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	again := newWallet(t, url, dir, "close under way", nil)
	if got, p := again.Balance(), again.Pending(); got != 924 || p != 0 {
		t.Fatalf("reopened: balance %d with %d pending, want 924 and 0", got, p)
	}
}
