package node

import (
	"testing"

	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment"
)

// TestEarnedOnlyGrows checks that a channel pruned from the ledger keeps
// its earnings counted and that balances are not counted twice.
func TestEarnedOnlyGrows(t *testing.T) {
	var p RelayPayments
	a, b := payment.ChannelID{1}, payment.ChannelID{2}
	for i, step := range []struct {
		now  map[payment.ChannelID]uint64
		want uint64
	}{
		{map[payment.ChannelID]uint64{a: 1000}, 1000},
		{map[payment.ChannelID]uint64{a: 3000, b: 2000}, 5000},
		{map[payment.ChannelID]uint64{b: 2000}, 5000}, // a pruned
		{map[payment.ChannelID]uint64{b: 4000}, 7000},
		{map[payment.ChannelID]uint64{}, 7000},
	} {
		if got := p.earned(step.now); got != step.want {
			t.Errorf("step %d: earned %d, want %d", i, got, step.want)
		}
	}
	if pay.MsatPer("sat") != 1000 || pay.MsatPer("msat") != 1 || pay.MsatPer("usd") != 0 {
		t.Error("unit conversion")
	}
}
