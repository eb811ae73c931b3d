package wallet

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/obolnet/obol/payment"
)

// Recover settles operations left pending by a crash or a lost answer:
// if the mint spent an operation's inputs (NUT-07), the wallet restores
// the signatures on its outputs (NUT-09) and completes it; if it did not,
// the operation is aborted and its inputs stay; a mint operation whose
// quote is paid is retried with the same outputs. It returns how many
// operations are still pending (the mint unreachable, a payment in
// flight, an unpaid quote). Operations whose request is under way are
// left to their own answers, and not counted.
func (w *Wallet) Recover(ctx context.Context) (int, error) {
	return w.RecoverEach(ctx, nil)
}

// RecoverEach is Recover with each operation's requests made under
// each(ctx) (nil: ctx): e.g. a context naming a fresh way to the mint per
// operation, so that the mint cannot tell two operations settled together
// from one user.
func (w *Wallet) RecoverEach(ctx context.Context, each func(context.Context) context.Context) (int, error) {
	if each == nil {
		each = func(c context.Context) context.Context { return c }
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return w.stuck(), err
	}
	ids := make([]string, 0, len(w.pending))
	for id := range w.pending {
		if !w.inflight[id] { // its request is under way: run settles it
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var errs []error
	for _, id := range ids {
		if err := w.settle(each(ctx), w.pending[id]); err != nil {
			errs = append(errs, fmt.Errorf("operation %s: %w", id, err))
		}
	}
	return w.stuck(), errors.Join(errs...)
}

// stuck counts the pending operations whose request is not under way:
// those only a recovery settles. w.mu is held.
func (w *Wallet) stuck() int {
	n := 0
	for id := range w.pending {
		if !w.inflight[id] {
			n++
		}
	}
	return n
}

func (w *Wallet) settle(ctx context.Context, o *op) error {
	if len(o.Inputs) == 0 {
		return w.settleMint(ctx, o)
	}
	ys := make([]string, len(o.Inputs))
	for i, p := range o.Inputs {
		Y, err := payment.HashToCurve([]byte(p.Secret))
		if err != nil {
			return err
		}
		ys[i] = pointHex(Y.SerializeCompressed())
	}
	states, err := w.client.CheckState(ctx, ys)
	if err != nil {
		return err
	}
	spent := 0
	for _, s := range states {
		switch s.State {
		case "SPENT":
			spent++
		case "PENDING":
			return nil // a payment in flight: ask again later
		}
	}
	if spent == 0 {
		return w.commit(&record{Abort: o.ID}) // never executed: the inputs stay
	}
	outs, sigs, err := w.restore(ctx, o.Outputs)
	if err != nil {
		return err
	}
	if len(sigs) == 0 {
		// Spent, but not by this operation (a token spent elsewhere):
		// drop the spent inputs.
		return w.commit(&record{Abort: o.ID, Remove: secretsOf(o.Inputs)})
	}
	_, err = w.complete(o, outs, sigs, true)
	return err
}

// settleMint restores a mint operation's outputs or retries it.
func (w *Wallet) settleMint(ctx context.Context, o *op) error {
	outs, sigs, err := w.restore(ctx, o.Outputs)
	if err != nil {
		return err
	}
	if len(sigs) == len(o.Outputs) {
		_, err := w.complete(o, outs, sigs, true)
		return err
	}
	q, err := w.client.MintQuoteState(ctx, o.Quote)
	if err != nil {
		return err
	}
	switch q.State {
	case "PAID":
		sigs, err := w.client.Mint(ctx, o.Quote, blinded(o.Outputs))
		var refused *MintError
		if errors.As(err, &refused) {
			return w.commit(&record{Abort: o.ID})
		}
		if err != nil {
			return err
		}
		_, err = w.complete(o, o.Outputs, sigs, true)
		return err
	case "ISSUED":
		return w.commit(&record{Abort: o.ID}) // issued to other outputs
	}
	return nil // unpaid: wait
}

// restore asks the mint for signatures on outputs and pairs them with the
// outputs they belong to.
func (w *Wallet) restore(ctx context.Context, outputs []output) ([]output, []payment.BlindSignature, error) {
	got, sigs, err := w.client.Restore(ctx, blinded(outputs))
	if err != nil {
		return nil, nil, err
	}
	if len(got) != len(sigs) {
		return nil, nil, errors.New("wallet: restore answer is inconsistent")
	}
	byB := make(map[string]output, len(outputs))
	for _, o := range outputs {
		byB[o.B] = o
	}
	var outs []output
	var matched []payment.BlindSignature
	for i, g := range got {
		if o, ok := byB[g.B]; ok {
			outs, matched = append(outs, o), append(matched, sigs[i])
		}
	}
	return outs, matched, nil
}

func pointHex(b []byte) string { return fmt.Sprintf("%x", b) }
