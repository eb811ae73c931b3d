package router_test

import (
	"path/filepath"
	"testing"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/router"
)

// benchMeter is a circuit meter over f's ledger, with the ledger's store
// on disk (each change synced) if stored.
func benchMeter(b *testing.B, f *meterFixture, stored bool) (*router.PaidMeter, router.CircuitMeter, *fakeControl) {
	if stored {
		st, _, err := payment.OpenFileStore(filepath.Join(b.TempDir(), "ledger.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		ks := f.ks
		f.ledger, _ = payment.NewLedger(payment.LedgerConfig{ReceiverKey: f.relay, Store: st,
			Keyset: func(string, string, string) (payment.Keyset, error) { return ks, nil }})
	}
	meter, _ := router.NewPaidMeter(router.PaidConfig{Ledger: f.ledger, PerMiB: 1000})
	ctl := newFakeControl()
	return meter, meter.Open(ctl), ctl
}

// BenchmarkMeterUpdate is a relay's cost of one BALANCE_UPDATE: reassembly,
// the signature check against outputs derived at open, the ledger record
// (in memory, or synced to disk) and the ACK.
//
//	go test -run XXX -bench Meter ./router
func BenchmarkMeterUpdate(b *testing.B) {
	for _, stored := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "synced"}[stored], func(b *testing.B) {
			f := newMeterFixture(b, 1<<20)
			_, cm, ctl := benchMeter(b, f, stored)
			open, _ := f.payer.Open()
			deliver(b, cm, ctl, circuit.RelayPayChannelOpen, open)
			updates := make([][]byte, 0, b.N)
			for range b.N {
				u, _ := payment.Fragment(mustPay(b, f.payer, 1000), circuit.MaxRelayBody)
				updates = append(updates, u[0])
			}
			b.ResetTimer()
			for _, u := range updates {
				cm.Deliver(circuit.RelayCell{Command: circuit.RelayPayBalanceUpdate, Body: u})
				if rc := <-ctl.replies; len(rc.Body) != payment.FragHeaderSize+payment.AckSize {
					b.Fatal("not an ACK")
				}
			}
		})
	}
}

// BenchmarkMeterOpen is a relay's cost of one CHANNEL_OPEN of a channel of
// 1024 sat: funding proofs and DLEQ checked, every output derived once.
func BenchmarkMeterOpen(b *testing.B) {
	f := newMeterFixture(b, 16)
	meter, _, ctl := benchMeter(b, f, false)
	opens := make([][][]byte, 0, b.N)
	for i := range b.N {
		_, _, p := f.fund(b, 1024, uint64(100+i))
		m, _ := p.Open()
		fr, _ := payment.Fragment(m, circuit.MaxRelayBody)
		opens = append(opens, fr)
	}
	b.ResetTimer()
	for _, fr := range opens {
		cm := meter.Open(ctl) // a channel per circuit
		for _, x := range fr {
			cm.Deliver(circuit.RelayCell{Command: circuit.RelayPayChannelOpen, Body: x})
		}
		if rc := <-ctl.replies; len(rc.Body) != payment.FragHeaderSize+payment.AckSize {
			b.Fatal("open refused")
		}
	}
}
