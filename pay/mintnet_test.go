package pay

import (
	"errors"
	"testing"

	"github.com/obolnet/obol/descriptor"
)

// Circuits that carry mint requests fund nothing, and take only relays
// whose free allowance carries the requests.
func TestMintPay(t *testing.T) {
	free := &descriptor.Relay{}
	roomy := &descriptor.Relay{Price: descriptor.Price{PerMiB: 1}, Payment: descriptor.Payment{FreeBytes: MintCircuitBytes}}
	tight := &descriptor.Relay{Price: descriptor.Price{PerMiB: 1}, Payment: descriptor.Payment{FreeBytes: MintCircuitBytes - 1}}
	cfg, err := MintPay([]*descriptor.Relay{free, roomy, nil})
	if err != nil || len(cfg.Hops) != 3 {
		t.Fatalf("a path of free and roomy relays: %+v, %v", cfg, err)
	}
	for i, h := range cfg.Hops {
		if h.Payer != nil || h.Next != nil {
			t.Fatalf("hop %d of a mint circuit would fund a channel", i)
		}
	}
	if _, err := MintPay([]*descriptor.Relay{free, tight, roomy}); !errors.Is(err, ErrNoAllowance) {
		t.Fatalf("a relay with too small an allowance: %v", err)
	}
	if MintUsable(tight) || !MintUsable(roomy) || !MintUsable(free) {
		t.Fatal("MintUsable disagrees with MintPay")
	}
}
