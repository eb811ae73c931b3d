package payment

import (
	"errors"
	"fmt"
	"slices"
)

// ErrAmount: an amount cannot be represented with the keyset or exceeds the
// channel.
var ErrAmount = errors.New("payment: amount not representable")

// amountSelector is the deterministic amount selection of the channel draft
// over one keyset: amounts largest first, those above the channel's maximum
// output amount left out.
type amountSelector struct {
	avail  []uint64 // descending
	feePPK uint64
}

func newAmountSelector(keysetAmounts []uint64, maxOutput, feePPK uint64) (amountSelector, error) {
	var avail []uint64
	for _, a := range keysetAmounts {
		if a > 0 && (maxOutput == 0 || a <= maxOutput) {
			avail = append(avail, a)
		}
	}
	slices.Sort(avail)
	avail = slices.Compact(avail)
	slices.Reverse(avail)
	if len(avail) == 0 || avail[len(avail)-1] != 1 {
		// Without a 1 some targets have no selection; the draft asserts
		// that every target is reached.
		return amountSelector{}, fmt.Errorf("%w: keyset has no amount 1 under the output maximum", ErrAmount)
	}
	return amountSelector{avail: avail, feePPK: feePPK}, nil
}

// counts returns, for each available amount (largest first), how many
// outputs of it the greedy selection of target takes.
func (s amountSelector) counts(target uint64) []uint64 {
	c := make([]uint64, len(s.avail))
	for i, a := range s.avail {
		c[i] = target / a
		target -= c[i] * a
	}
	return c
}

// numOutputs is the number of outputs the selection of target takes.
func (s amountSelector) numOutputs(target uint64) uint64 {
	var n uint64
	for _, a := range s.avail {
		n += target / a
		target %= a
	}
	return n
}

// valueAfterFees is deterministic_value_after_fees(x) =
// x - ceil(input_fee_ppk * num_outputs(x) / 1000).
func (s amountSelector) valueAfterFees(x uint64) uint64 {
	fee := (s.feePPK*s.numOutputs(x) + 999) / 1000
	if fee > x {
		return 0
	}
	return x - fee
}

// inverse is the smallest x <= limit with valueAfterFees(x) >= y.
func (s amountSelector) inverse(y, limit uint64) (uint64, error) {
	for x := y; x <= limit; x++ {
		if s.valueAfterFees(x) >= y {
			return x, nil
		}
	}
	return 0, fmt.Errorf("%w: no nominal value up to %d yields %d after fees", ErrAmount, limit, y)
}

// maxCounts bounds, for each available amount, how many outputs of it the
// selection of any target up to t can take: t/a for the largest amount,
// and below every other amount a the remainder left by the next larger one.
func (s amountSelector) maxCounts(t uint64) []uint64 {
	m := make([]uint64, len(s.avail))
	for i, a := range s.avail {
		m[i] = t / a
		if i > 0 {
			m[i] = min(m[i], (s.avail[i-1]-1)/a)
		}
	}
	return m
}

// PowersOfTwo splits an amount into distinct powers of two, smallest
// first: the usual outputs for a keyset of powers of two.
func PowersOfTwo(amount uint64) []uint64 {
	var out []uint64
	for i := 0; amount != 0; i++ {
		if amount&1 == 1 {
			out = append(out, 1<<i)
		}
		amount >>= 1
	}
	return out
}
