package pay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment/wallet"
)

// descriptorOf is what relay r would publish: its address, onion key and
// terms, with the mint's keyset.
func (tn *testNet) descriptorOf(r *paidRelay) *descriptor.Relay {
	ks, _ := tn.mint.ActiveKeyset("sat")
	d := *r.Desc
	d.Expires = time.Now().Add(time.Hour).Unix()
	d.Price = descriptor.Price{PerMiB: tn.terms.PerMiB, PerCircuit: tn.terms.PerCircuit}
	d.Payment = descriptor.Payment{Mints: []descriptor.AcceptedMint{{URL: tn.mintURL, Unit: "sat", Keysets: []string{ks.ID}}},
		ReceiverKey: r.key.PubKey().SerializeCompressed(), PrepayBytes: tn.terms.PrepayBytes, FreeBytes: tn.terms.FreeBytes}
	return &d
}

// A manager given Pay pays every circuit it builds: traffic far beyond
// the relays' free allowance flows, every relay is paid, and what the
// client's channels signed is what the relays settled.
func TestManagerPaysCircuits(t *testing.T) {
	port, sum := dataServer(t)
	tn := newTestNet(t, 3, netOpts{})
	cl := tn.newClient(t, t.TempDir(), 50_000)
	defer cl.close()
	var descs []*descriptor.Relay
	for _, r := range tn.relays {
		descs = append(descs, tn.descriptorOf(r))
	}
	paths := &pay.Paths{C: cl.paid, Budget: 200_000}
	m, err := client.NewCircuitManager(client.Config{Links: tn.links, Directory: client.DirectoryFunc(func() []*descriptor.Relay { return descs }),
		AllowSameSubnet: true, Prebuilt: -1, Usable: cl.paid.Usable, Pay: paths.Pay})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()

	const size = 3 << 20 // far beyond the 64 KiB allowance
	for i := range 2 {
		dctx, dcancel := context.WithTimeout(ctx, time.Minute)
		conn, err := m.DialIsolated(dctx, client.NewIsolationKey(fmt.Sprint(i)), "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := get(conn, size, nil); err != nil || got != sum(size) {
			t.Fatalf("transfer %d: %v (hash ok %v)", i, err, got == sum(size))
		}
		conn.Close()
		dcancel()
	}
	cancel()
	<-done
	spent := m.Spent()
	// 2 circuits × 3 hops × (1 sat per circuit + ≥ 3 MiB at 1 sat/MiB).
	if spent < 2*3*(1000+3000) {
		t.Fatalf("the manager's circuits paid %d msat, less than their traffic costs", spent)
	}
	waitFor(t, "relays to settle", func() bool { return tn.allSettled() })
	var earned uint64
	for _, r := range tn.relays {
		var got uint64
		for _, s := range r.settlements() {
			got += s.Amount
		}
		if got == 0 {
			t.Errorf("relay %s was not paid", r.Host.ID())
		}
		earned += got
	}
	// Channels sign whole units, rounding each hop's msat up.
	if earned*1000 < spent || earned*1000 >= spent+6*1000 {
		t.Errorf("relays settled %d sat for %d msat paid", earned, spent)
	}
	rep, err := cl.paid.Settle(context.Background())
	if err != nil || rep.Open != 0 {
		t.Fatalf("client settlement: %+v, %v", rep, err)
	}
	if want := 50_000 - earned; cl.wallet.Balance() != want {
		t.Errorf("client wallet holds %d sat after settlement, want %d", cl.wallet.Balance(), want)
	}
}

// Relays that take another mint are left out of paths; a wallet that
// cannot fund a path's channels fails the build with a clear error.
func TestManagerUnpayablePaths(t *testing.T) {
	tn := newTestNet(t, 3, netOpts{})
	cl := tn.newClient(t, t.TempDir(), 0)
	defer cl.close()
	other := tn.descriptorOf(tn.relays[0])
	other.Payment.Mints = []descriptor.AcceptedMint{{URL: "http://127.0.0.1:1/other-mint", Unit: "sat"}}
	if cl.paid.Usable(other) {
		t.Fatal("a relay of another mint is usable")
	}
	if !cl.paid.Usable(&descriptor.Relay{}) {
		t.Fatal("a free relay is not usable")
	}
	descs := []*descriptor.Relay{tn.descriptorOf(tn.relays[0]), tn.descriptorOf(tn.relays[1]), tn.descriptorOf(tn.relays[2])}
	paths := &pay.Paths{C: cl.paid}
	if _, err := paths.Pay(descs); !errors.Is(err, wallet.ErrInsufficient) {
		t.Fatalf("paying from an empty wallet: %v, want ErrInsufficient", err)
	}
	paths.Budget = 1000 // less than one relay's circuit price and window
	if _, err := paths.Pay(descs); !errors.Is(err, client.ErrUnaffordable) {
		t.Fatalf("a path beyond the budget: %v, want ErrUnaffordable", err)
	}
}
