package wallet

import (
	"context"
	"errors"
	"math/bits"
	"sort"

	"github.com/obolnet/obol/payment"
)

// ErrNoBundle: the wallet holds no set of proofs that funds a channel
// exactly; Fund would have to split proofs at the moment of funding.
var ErrNoBundle = errors.New("wallet: no exact denominations for this funding")

// Bundle is the set of denominations (powers of two) whose proofs fund
// total exactly, the input fee of the active keyset included: the
// smallest n with popcount(total + fee(n)) = n. A funding from a bundle
// has no change output.
func (w *Wallet) Bundle(total uint64) ([]uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return nil, err
	}
	return w.bundle(total), nil
}

func (w *Wallet) bundle(total uint64) []uint64 {
	for n := 1; n <= 64; n++ {
		if a := total + w.fee(n); bits.OnesCount64(a) == n {
			return payment.PowersOfTwo(a)
		}
	}
	return nil // no n fits (a fee of more than one unit per input)
}

// Denominations counts the wallet's spendable proofs by amount (those of
// pending operations left out).
func (w *Wallet) Denominations() map[uint64]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := map[uint64]int{}
	for _, p := range w.free() {
		d[p.Amount]++
	}
	return d
}

// free lists the proofs not held by a pending operation; w.mu is held.
func (w *Wallet) free() []payment.Proof {
	inFlight := map[string]bool{}
	for _, o := range w.pending {
		for _, p := range o.Inputs {
			inFlight[p.Secret] = true
		}
	}
	all := make([]payment.Proof, 0, len(w.proofs))
	for _, p := range w.proofs {
		if !inFlight[p.Secret] {
			all = append(all, p)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Amount != all[j].Amount {
			return all[i].Amount > all[j].Amount
		}
		return all[i].Secret < all[j].Secret
	})
	return all
}

// Split swaps proofs into new proofs of the given amounts (each a power
// of two), the change in powers of two: it prepares denominations ahead
// of need. keep counts, by amount, proofs it must not spend (those
// already set aside). It fails with ErrInsufficient if what it may spend
// does not cover amounts and the fee.
func (w *Wallet) Split(ctx context.Context, amounts []uint64, keep map[uint64]int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return err
	}
	var want uint64
	for _, a := range amounts {
		if bits.OnesCount64(a) != 1 {
			return errors.New("wallet: split amounts must be powers of two")
		}
		want += a
	}
	kept := map[uint64]int{}
	var inputs []payment.Proof
	var sum uint64
	for _, p := range w.free() {
		if kept[p.Amount] < keep[p.Amount] {
			kept[p.Amount]++
			continue
		}
		inputs = append(inputs, p)
		sum += p.Amount
		if sum >= want+w.fee(len(inputs)) {
			break
		}
	}
	if len(inputs) == 0 || sum < want+w.fee(len(inputs)) {
		return ErrInsufficient
	}
	change := payment.PowersOfTwo(sum - w.fee(len(inputs)) - want)
	outs, ctr, err := w.newOutputs(roleKeep, append(append([]uint64(nil), amounts...), change...))
	if err != nil {
		return err
	}
	o := &op{ID: newOpID(), Kind: "split", Amount: want, Inputs: inputs, Outputs: outs}
	_, err = w.run(o, ctr, func() ([]payment.BlindSignature, error) {
		return w.client.Swap(ctx, inputs, blinded(outs))
	})
	return err
}

// exactInputs picks proofs of exactly the denominations of bundle;
// w.mu is held.
func (w *Wallet) exactInputs(bundle []uint64) ([]payment.Proof, bool) {
	need := map[uint64]int{}
	for _, a := range bundle {
		need[a]++
	}
	var inputs []payment.Proof
	for _, p := range w.free() {
		if need[p.Amount] > 0 {
			need[p.Amount]--
			inputs = append(inputs, p)
		}
	}
	return inputs, len(inputs) == len(bundle)
}
