package pay_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/pay"
)

// buildAsPaths builds a circuit through relays idx and pays it with the
// hop payments a client's Paths.Pay makes (pay.Channels.CircuitHops).
func (tn *testNet) buildAsPaths(t *testing.T, c *testClient, idx ...int) (*client.Circuit, []client.HopPayment) {
	t.Helper()
	var path []client.Hop
	relays := make([]pay.RelayTerms, len(idx))
	capacities := make([]uint64, len(idx))
	for k, i := range idx {
		path = append(path, tn.relays[i].Hop())
		relays[k] = tn.relays[i].relay(tn.terms)
		cp, err := c.paid.Capacity(tn.terms.Owed(8<<20), relays[k])
		if err != nil {
			t.Fatal(err)
		}
		capacities[k] = cp
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	circ, err := client.Build(ctx, tn.links, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { circ.Close() })
	hops := c.paid.CircuitHops(relays, capacities)
	p, err := client.NewPayments(circ, client.PayConfig{Hops: hops})
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(pctx) }()
	t.Cleanup(func() { circ.Close(); stop(); <-done })
	return circ, hops
}

// A fresh circuit that carries more than its relays' free allowance is
// funded when it needs its channels, not at the funding time drawn after
// its build: with that time an hour away, a transfer of 16 times the
// allowance still completes. A circuit that carries a small request is
// left to its drawn time: it makes no mint request.
func TestFreshCircuitFundedOnDemand(t *testing.T) {
	tn := newTestNet(t, 3, netOpts{fundDelay: time.Hour})
	port, sum := dataServer(t)
	c := tn.newClient(t, t.TempDir(), 100_000)
	defer c.close()
	swaps := func() int {
		n := 0
		for _, e := range tn.log.events() {
			if e.kind == "mint" && e.path == "/v1/swap" {
				n++
			}
		}
		return n
	}

	// A small request: no funding.
	small, smallHops := tn.buildAsPaths(t, c, 0, 1, 2)
	before := swaps()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := small.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := get(s, 2<<10, nil); err != nil || got != sum(2<<10) {
		t.Fatalf("small request: %v", err)
	}
	s.Close()

	// Bulk on a fresh circuit: 16 times the free allowance.
	bulk, bulkHops := tn.buildAsPaths(t, c, 0, 1, 2)
	n := int(16 * tn.terms.FreeBytes)
	s, err = bulk.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := get(s, n, nil); err != nil || got != sum(n) {
		t.Fatalf("bulk on a fresh circuit with its funding time an hour away: %v", err)
	}
	s.Close()
	waitPaid(ctx, t, bulkHops)
	for i, h := range smallHops {
		if a := pay.AccountingOf(h.Payer); a != (pay.Accounting{}) {
			t.Errorf("the small request's hop %d opened a channel before its funding time: %+v", i, a)
		}
	}
	if got := swaps() - before; got != 3 {
		t.Errorf("the mint saw %d swaps, want the bulk circuit's 3 fundings only", got)
	}
}

// The hops of a circuit wait for their funding times, and fund, at the
// same time rather than one after another: the three waits are all under
// way before any ends.
func TestHopsFundedConcurrently(t *testing.T) {
	waiting := make(chan struct{}, 3)
	release := make(chan struct{})
	tn := newTestNet(t, 3, netOpts{fundSleep: func(ctx context.Context, _ time.Duration) error {
		waiting <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	port, sum := dataServer(t)
	c := tn.newClient(t, t.TempDir(), 100_000)
	defer c.close()
	circ, hops := tn.buildAsPaths(t, c, 0, 1, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 3 {
		select {
		case <-waiting:
		case <-ctx.Done():
			t.Fatalf("%d of 3 hops were waiting for their funding times at once", i)
		}
	}
	close(release)
	s, err := circ.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	n := int(4 * tn.terms.FreeBytes)
	if got, err := get(s, n, nil); err != nil || got != sum(n) {
		t.Fatalf("transfer after the fundings: %v", err)
	}
	waitPaid(ctx, t, hops)
}

// waitPaid waits until every hop has signed a payment, or ctx ends.
func waitPaid(ctx context.Context, t *testing.T, hops []client.HopPayment) {
	t.Helper()
	for i, h := range hops {
		for pay.AccountingOf(h.Payer).Signed == 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("hop %d was never paid: %+v", i, pay.AccountingOf(h.Payer))
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// A channel funded for a circuit that ended while its funding was at the
// mint was never offered to its relay: the next circuit through that
// relay opens it, making no mint request, rather than leave its funding
// locked until the channel's expiry.
func TestChannelOfEndedCircuitReused(t *testing.T) {
	tn := newTestNet(t, 3, netOpts{})
	port, sum := dataServer(t)
	c := tn.newClient(t, t.TempDir(), 100_000)
	defer c.close()
	var swaps atomic.Int32
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	c.crash.before.Store(func(r *http.Request) {
		if r.URL.Path == "/v1/swap" {
			swaps.Add(1)
			arrived <- struct{}{}
			<-release
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ended, _ := tn.buildAsPaths(t, c, 0, 1, 2)
	for i := range 3 {
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatalf("%d of 3 fundings reached the mint", i)
		}
	}
	ended.Close() // while the three fundings are at the mint
	close(release)
	for pay.Spares(c.paid) < 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of the 3 channels funded for the ended circuit kept", pay.Spares(c.paid))
		case <-time.After(10 * time.Millisecond):
		}
	}

	next, hops := tn.buildAsPaths(t, c, 0, 1, 2)
	s, err := next.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	n := int(4 * tn.terms.FreeBytes)
	if got, err := get(s, n, nil); err != nil || got != sum(n) {
		t.Fatalf("transfer on the next circuit: %v", err)
	}
	waitPaid(ctx, t, hops)
	if got := swaps.Load(); got != 3 {
		t.Errorf("the mint saw %d swaps, want the ended circuit's 3 only", got)
	}
	if n := pay.Spares(c.paid); n != 0 {
		t.Errorf("%d spare channels left after the next circuit opened them", n)
	}
}
