package client

import (
	"math"
	"testing"
)

func TestTermsOwed(t *testing.T) {
	cases := []struct {
		terms Terms
		bytes uint64
		want  uint64
	}{
		{Terms{}, 1 << 30, 0},
		{Terms{PerCircuit: 1000}, 0, 1000},
		{Terms{PerMiB: 1000}, 1 << 20, 1000},
		{Terms{PerMiB: 1000}, 1, 1},          // rounded up
		{Terms{PerMiB: 1000}, 1280, 2},       // one cell: 1.22 msat
		{Terms{PerMiB: 1 << 20}, 1280, 1280}, // 1 msat per byte
		{Terms{PerMiB: math.MaxUint64}, 1 << 20, math.MaxUint64},
		{Terms{PerMiB: math.MaxUint64}, 1 << 21, math.MaxUint64}, // saturates
		{Terms{PerMiB: 1, PerCircuit: math.MaxUint64}, 1 << 21, math.MaxUint64},
	}
	for _, c := range cases {
		if got := c.terms.Owed(c.bytes); got != c.want {
			t.Errorf("%+v.Owed(%d) = %d, want %d", c.terms, c.bytes, got, c.want)
		}
	}
}

func TestAffordable(t *testing.T) {
	hop := Terms{PerMiB: 1000, PerCircuit: 1000, PrepayBytes: 6 << 20}
	path := []Terms{hop, hop, hop}
	// Each hop: 1000 per circuit + 6 MiB ahead = 7000 msat.
	cases := []struct {
		bytes, budget uint64
		want          bool
	}{
		{0, 0, true}, // no bound
		{0, 21000, true},
		{0, 20999, false},
		{10 << 20, 51000, true},
		{10 << 20, 50999, false},
		{math.MaxUint64, 1 << 50, false}, // no wrap-around
	}
	for _, c := range cases {
		if got := Affordable(path, c.bytes, c.budget); got != c.want {
			t.Errorf("Affordable(%d bytes, budget %d) = %v", c.bytes, c.budget, got)
		}
	}
}
