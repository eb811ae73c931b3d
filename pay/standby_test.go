package pay_test

import (
	"context"
	"testing"
	"time"

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
	if n, err := sb.Fill(ctx, 0); err != nil || n != 2 || sb.Ready() != 2 {
		t.Fatalf("fill: %d funded (%v), %d ready; want 2", n, err, sb.Ready())
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
	if sb.Ready() != 0 {
		t.Fatalf("%d ready after two were opened", sb.Ready())
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
}
