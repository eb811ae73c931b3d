package pay_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/pay"
)

// mintRequests counts the requests that reached the mint.
func (tn *testNet) mintRequests() int {
	n := 0
	for _, e := range tn.log.events() {
		if e.kind == "mint" {
			n++
		}
	}
	return n
}

// Standby channels are funded by Fill only, for the relays Stock names
// (Per each); a rendezvous path is paid from them on every hop but the
// last, which is left unpaid; opening one makes no mint request; and a
// hop with none ready waits for the next refill.
func TestStandbyChannels(t *testing.T) {
	tn := newTestNet(t, 2, netOpts{})
	cl := tn.newClient(t, t.TempDir(), 20_000)
	defer cl.close()
	sb := pay.NewStandby(cl.paid, pay.StandbyConfig{Per: 2}, 0)
	d0, d1 := tn.descriptorOf(tn.relays[0]), tn.descriptorOf(tn.relays[1])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if n, err := sb.Fill(ctx, 0); err != nil || n != 0 {
		t.Fatalf("fill with no relay named: %d, %v", n, err)
	}
	sb.Stock([]*descriptor.Relay{d0})
	if sb.Stocked(d0) {
		t.Fatal("a relay named but not filled yet counts as stocked")
	}
	if n, err := sb.Fill(ctx, 0); err != nil || n != 2 || sb.Ready() != 2 {
		t.Fatalf("fill: %d funded (%v), %d ready; want 2", n, err, sb.Ready())
	}
	if !sb.Stocked(d0) || sb.Stocked(d1) {
		t.Fatalf("stocked: %v and %v, want the filled relay only", sb.Stocked(d0), sb.Stocked(d1))
	}
	before := tn.mintRequests()
	if n, err := sb.Fill(ctx, 0); err != nil || n != 0 {
		t.Fatalf("fill of a full stock: %d, %v", n, err)
	}
	cfg, err := sb.Pay([]*descriptor.Relay{d0, d1})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hops[0].Payer == nil || cfg.Hops[0].Next == nil || cfg.Hops[1].Payer != nil {
		t.Fatal("want the first hop paid from standby channels and the last hop unpaid")
	}
	for range 2 {
		if bodies, err := cfg.Hops[0].Next().Open(ctx); err != nil || len(bodies) == 0 {
			t.Fatalf("open a standby channel: %v", err)
		}
	}
	if got := tn.mintRequests(); got != before {
		t.Fatalf("opening standby channels (and a full stock's fill) made %d mint requests", got-before)
	}
	if sb.Ready() != 0 || sb.Stocked(d0) {
		t.Fatalf("%d ready after two were opened (stocked: %v)", sb.Ready(), sb.Stocked(d0))
	}

	// With none ready, Open waits for a refill.
	opened := make(chan error, 1)
	go func() {
		_, err := cfg.Hops[0].Next().Open(ctx)
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("a standby payer opened with no channel ready (%v)", err)
	default:
	}
	if n, err := sb.Fill(ctx, 0); err != nil || n < 1 {
		t.Fatalf("refill: %d, %v", n, err)
	}
	if err := <-opened; err != nil {
		t.Fatalf("open after the refill: %v", err)
	}

	// A relay no longer named is not refilled.
	sb.Stock([]*descriptor.Relay{d1})
	n, err := sb.Fill(ctx, 0)
	if err != nil || n != 2 {
		t.Fatalf("fill for the relay named now: %d, %v", n, err)
	}
	if n, _ := sb.Fill(ctx, 0); n != 0 {
		t.Fatalf("a relay no longer named was refilled (%d)", n)
	}

	// A channel taken for a circuit that ended before it was offered
	// goes back to the stock.
	cfg, err = sb.Pay([]*descriptor.Relay{d1, d0})
	if err != nil {
		t.Fatal(err)
	}
	taken := cfg.Hops[0].Payer
	if _, err := taken.Open(ctx); err != nil {
		t.Fatal(err)
	}
	ready := sb.Ready()
	taken.(client.Releaser).Unused()
	if sb.Ready() != ready+1 {
		t.Fatalf("%d ready after an unused channel came back, want %d", sb.Ready(), ready+1)
	}

	// A relay whose channels go faster than Per a refill gets more: three
	// taken within the last four refill intervals make three a refill
	// (3 × 3 / 4, rounded up).
	takes := 1 // the one above, which came back unused, counts as demand
	for ; sb.Stocked(d1); takes++ {
		if _, err := cfg.Hops[0].Next().Open(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if takes != 3 {
		t.Fatalf("%d channels taken from the relay, want 3", takes)
	}
	ready = sb.Ready()
	if n, err := sb.Fill(ctx, 0); err != nil || n != 3 || sb.Ready() != ready+3 {
		t.Fatalf("refill after 3 takes: %d funded (%v), %d ready of %d; want 3 more, above Per", n, err, sb.Ready(), ready)
	}
}

// A payer reopened from its directory stocks again the standby channels
// funded before it closed, with no new funding swap; the channels the
// restocked stock pays circuits with are accepted by the relays; those a
// circuit took are not offered again after another restart, nor those
// too close to their expiry, which come back as refunds: at the end the
// wallet and the relays hold every sat topped up.
func TestStandbySurvivesRestart(t *testing.T) {
	var offset atomic.Int64 // seconds the shared clock is ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load()) * time.Second) }
	tn := newTestNet(t, 3, netOpts{clock: clock})
	var descs []*descriptor.Relay
	for _, r := range tn.relays {
		descs = append(descs, tn.descriptorOf(r))
	}
	guards := descs[:2] // a guard and a vanguard
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func() *pay.Payer {
		p, err := pay.OpenPayer(ctx, pay.PayerConfig{Wallet: pay.WalletConfig{Dir: dir, Mint: tn.mintURL,
			Transport: tn.log.transport(), Now: clock}, Standby: pay.StandbyConfig{Per: 2, Every: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	const topUp = 20_000
	p := open()
	if _, err := p.Wallet().TopUp(ctx, topUp); err != nil {
		t.Fatal(err)
	}
	p.Standby().Stock(guards)
	if n, err := p.Standby().Fill(ctx, 0); err != nil || n != 4 {
		t.Fatalf("fill: %d funded, %v; want 4", n, err)
	}
	balance := p.Balance()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	// The restart restocks all four, and a fill finds nothing missing.
	mark := len(tn.log.events())
	p = open()
	p.Standby().Stock(guards)
	if got := p.Standby().Ready(); got != 4 {
		t.Fatalf("%d standby channels ready after a restart; want the 4 funded before", got)
	}
	if n, err := p.Standby().Fill(ctx, 0); err != nil || n != 0 {
		t.Fatalf("fill after a restart funded %d (%v)", n, err)
	}
	rep, err := p.Channels().Settle(ctx)
	if err != nil || rep.Open != 4 || p.Balance() != balance || p.Balance()+rep.Locked != topUp {
		t.Fatalf("after a restart: %+v (%v), balance %d (was %d); want 4 channels locking %d", rep, err, p.Balance(), balance, topUp-balance)
	}

	// A rendezvous circuit opens two of them, on the guard and the
	// vanguard, and the relays accept them.
	var path []client.Hop
	for _, r := range tn.relays {
		path = append(path, r.Hop())
	}
	circ, err := client.Build(ctx, tn.links, path)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := p.Standby().Pay(descs)
	if err != nil {
		t.Fatal(err)
	}
	payments, err := client.NewPayments(circ, pc)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- payments.Run(pctx) }()
	for _, r := range tn.relays[:2] {
		for len(r.ledger.Channels()) == 0 {
			select {
			case <-ctx.Done():
				t.Fatal("a relay never accepted its restocked standby channel")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	circ.Close()
	stop()
	<-done
	if n := swapsSince(tn.log, mark); n != 0 {
		t.Fatalf("%d funding swaps after the restart; want none", n)
	}

	// The channels the circuit took are not offered again.
	p.Close()
	p = open()
	p.Standby().Stock(guards)
	if got := p.Standby().Ready(); got != 2 {
		t.Fatalf("%d ready after the second restart; want the 2 no circuit took", got)
	}

	// Too close to their expiry, they are not offered, and stay booked.
	p.Close()
	offset.Store(int64((19 * time.Hour).Seconds()))
	p = open()
	defer p.Close()
	p.Standby().Stock(guards)
	if got := p.Standby().Ready(); got != 0 {
		t.Fatalf("%d standby channels ready with less than MinLife left", got)
	}
	for _, r := range tn.relays[:2] { // the relays close the circuit's channels
		for len(r.settlements()) == 0 {
			select {
			case <-ctx.Done():
				t.Fatal("a relay did not settle")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	offset.Store(int64((31 * time.Hour).Seconds())) // past every expiry
	rep, err = p.Settle(ctx)
	if err != nil || rep.Open != 0 || rep.Settled < 2 {
		t.Fatalf("settlement past expiry: %+v, %v; want the 2 standby channels left refunded", rep, err)
	}
	total := p.Balance()
	for _, r := range tn.relays {
		total += r.wallet.Balance()
	}
	if total != topUp {
		t.Fatalf("the wallet and the relays hold %d; %d were topped up", total, topUp)
	}
}

// A running payer fills the standby stock when a service first names its
// guards and vanguards, without waiting for the Poisson process (a day
// here): the service's first introductions find channels ready.
func TestStandbyFillsAtStart(t *testing.T) {
	tn := newTestNet(t, 2, netOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pay.OpenPayer(ctx, pay.PayerConfig{Wallet: pay.WalletConfig{Dir: t.TempDir(), Mint: tn.mintURL,
		Transport: tn.log.transport()}, SettleEvery: 24 * time.Hour,
		Standby: pay.StandbyConfig{Per: 2, Every: 24 * time.Hour, Gap: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Wallet().TopUp(ctx, 20_000); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.Run(rctx) }()
	defer func() { stop(); <-done }()
	p.Standby().Stock([]*descriptor.Relay{tn.descriptorOf(tn.relays[0]), tn.descriptorOf(tn.relays[1])})
	for p.Standby().Ready() < 4 {
		select {
		case <-ctx.Done():
			t.Fatalf("%d standby channels ready; the start's fill did not come", p.Standby().Ready())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
