package wallet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
)

// run writes an operation ahead, makes the mint call and settles the
// operation: a refusal by the mint, or a request that never left
// (ErrNotSent), aborts it (the mint did nothing); any other failure
// leaves it pending for Recover, since the mint may have executed it. w.mu is held, and released during the call: the
// operation's inputs are pending meanwhile, so no other operation takes
// them, and Recover leaves the operation alone.
func (w *Wallet) run(o *op, counters map[string]uint32, call func() ([]payment.BlindSignature, error)) ([]payment.Proof, error) {
	if err := w.commit(&record{Begin: o, Counter: counters}); err != nil {
		return nil, err
	}
	w.inflight[o.ID] = true
	w.mu.Unlock()
	sigs, err := call()
	w.mu.Lock()
	delete(w.inflight, o.ID)
	w.idle.Broadcast()
	var refused *MintError
	if errors.As(err, &refused) || errors.Is(err, ErrNotSent) {
		if aerr := w.commit(&record{Abort: o.ID}); aerr != nil {
			return nil, errors.Join(err, aerr)
		}
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w (the operation is pending; Recover settles it)", err)
	}
	return w.complete(o, o.Outputs[:min(len(sigs), len(o.Outputs))], sigs, false)
}

// complete unblinds the signatures of an executed operation and records
// its results; it returns the proofs of role send. When recovering, the
// proofs of a send were never handed out, so the wallet keeps them. w.mu
// is held.
func (w *Wallet) complete(o *op, outs []output, sigs []payment.BlindSignature, recovering bool) ([]payment.Proof, error) {
	proofs, err := w.unblind(outs, sigs)
	if err != nil {
		return nil, err
	}
	rec := &record{Done: o.ID, Remove: secretsOf(o.Inputs)}
	var sent, fund []payment.Proof
	var kept uint64
	for i, p := range proofs {
		p.Witness = outs[i].Witness
		role := outs[i].Role
		if recovering && role == roleSend {
			role = roleKeep
		}
		switch role {
		case roleKeep:
			rec.Add = append(rec.Add, p)
			kept += p.Amount
		case roleSend:
			sent = append(sent, p)
		case roleFund:
			fund = append(fund, p)
		}
	}
	switch {
	case len(fund) > 0:
		rec.Funded = &Funded{Channel: o.Channel, Proofs: fund}
	case o.Kind == "refund" || o.Kind == "reclaim":
		rec.Funded = &Funded{Channel: o.Channel} // the channel is settled
	}
	var in uint64
	for _, p := range o.Inputs {
		in += p.Amount
	}
	rec.History = &HistoryEntry{Time: w.cfg.Now().Unix(), Kind: o.Kind, Amount: o.Amount}
	if recovering {
		rec.History.Note = "recovered"
	}
	switch {
	case o.Kind == "send" && !recovering, o.Kind == "melt", o.Kind == "fund":
		rec.History.Fee = in - o.Amount - kept
	case o.Kind == "close":
		// The funding token was the sender's; its fee is not the wallet's.
	case in > 0:
		rec.History.Fee = in - kept // receive, refund, reclaim, a recovered send
	}
	if err := w.commit(rec); err != nil {
		return nil, err
	}
	return sent, nil
}

func (w *Wallet) loaded() error {
	if w.ks == nil {
		return ErrNotLoaded
	}
	return nil
}

// TopUp asks the mint for an invoice of amount and, if it is paid (the test
// mint pays at once), mints it. An unpaid quote comes back with
// ErrQuoteUnpaid: pay its invoice, then Claim it.
func (w *Wallet) TopUp(ctx context.Context, amount uint64) (*payment.MintQuote, error) {
	q, err := w.client.CreateMintQuote(ctx, amount, w.cfg.Unit)
	if err != nil {
		return nil, err
	}
	if q.State != "PAID" {
		return q, ErrQuoteUnpaid
	}
	return q, w.Claim(ctx, q.Quote, amount)
}

// Claim mints a paid quote of amount.
func (w *Wallet) Claim(ctx context.Context, quote string, amount uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return err
	}
	outs, ctr, err := w.newOutputs(roleKeep, payment.PowersOfTwo(amount))
	if err != nil {
		return err
	}
	o := &op{ID: newOpID(), Kind: "mint", Quote: quote, Amount: amount, Outputs: outs}
	_, err = w.run(o, ctr, func() ([]payment.BlindSignature, error) {
		return w.client.Mint(ctx, quote, blinded(outs))
	})
	return err
}

// Send takes amount out of the wallet as a V4 token, locked to lock if it
// is not nil (NUT-11). The swap's fee is the wallet's.
func (w *Wallet) Send(ctx context.Context, amount uint64, lock *btcec.PublicKey) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return "", err
	}
	inputs, sum, err := w.selectProofs(amount)
	if err != nil {
		return "", err
	}
	send, ctr, err := w.newOutputs(roleSend, payment.PowersOfTwo(amount))
	if err != nil {
		return "", err
	}
	if lock != nil {
		if err := lockOutputs(send, lock); err != nil {
			return "", err
		}
	}
	w.counters[w.ks.ID] = ctr[w.ks.ID] // the change continues the counter
	keep, ctr, err := w.newOutputs(roleKeep, payment.PowersOfTwo(sum-w.fee(len(inputs))-amount))
	if err != nil {
		return "", err
	}
	outs := append(send, keep...)
	o := &op{ID: newOpID(), Kind: "send", Amount: amount, Inputs: inputs, Outputs: outs}
	sent, err := w.run(o, ctr, func() ([]payment.BlindSignature, error) {
		return w.client.Swap(ctx, inputs, blinded(outs))
	})
	if err != nil {
		return "", err
	}
	tok := payment.Token{Mint: w.cfg.Mint, Unit: w.cfg.Unit, Proofs: sent}
	return tok.EncodeV4()
}

// lockOutputs replaces the secrets of outputs by P2PK secrets to key and
// reblinds them with the same factors.
func lockOutputs(outs []output, key *btcec.PublicKey) error {
	for i := range outs {
		var n [32]byte
		if _, err := rand.Read(n[:]); err != nil {
			return err
		}
		outs[i].Secret = payment.Secret{Kind: payment.KindP2PK, Nonce: hex.EncodeToString(n[:]),
			Data: hex.EncodeToString(key.SerializeCompressed())}.String()
		r, _ := hex.DecodeString(outs[i].R)
		rk, _ := btcec.PrivKeyFromBytes(r)
		B, err := payment.BlindMessage(outs[i].Secret, rk)
		if err != nil {
			return err
		}
		outs[i].B = hex.EncodeToString(B.SerializeCompressed())
	}
	return nil
}

// Receive swaps a token's proofs into the wallet, signing P2PK-locked ones
// with key (may be nil). It returns the amount received after fees.
func (w *Wallet) Receive(ctx context.Context, token string, key *btcec.PrivateKey) (uint64, error) {
	tok, err := payment.DecodeToken(token)
	if err != nil {
		return 0, err
	}
	if tok.Mint != w.cfg.Mint || tok.Unit != w.cfg.Unit {
		return 0, ErrWrongMint
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return 0, err
	}
	inputs := tok.Proofs
	var sum uint64
	for i := range inputs {
		sum += inputs[i].Amount
		inputs[i].DLEQ = nil
		if key != nil {
			if err := signInput(&inputs[i], key); err != nil {
				return 0, err
			}
		}
	}
	f := w.fee(len(inputs))
	if sum <= f {
		return 0, ErrInsufficient
	}
	outs, ctr, err := w.newOutputs(roleKeep, payment.PowersOfTwo(sum-f))
	if err != nil {
		return 0, err
	}
	o := &op{ID: newOpID(), Kind: "receive", Amount: sum - f, Inputs: inputs, Outputs: outs}
	_, err = w.run(o, ctr, func() ([]payment.BlindSignature, error) {
		return w.client.Swap(ctx, inputs, blinded(outs))
	})
	return sum - f, err
}

// signInput adds a SIG_INPUTS signature by key to a P2PK proof.
func signInput(p *payment.Proof, key *btcec.PrivateKey) error {
	s, err := payment.ParseSecret(p.Secret)
	if err != nil || s.Kind != payment.KindP2PK {
		return nil // not locked
	}
	sig, err := payment.SignMessage(key, []byte(p.Secret))
	if err != nil {
		return err
	}
	p.Witness = payment.Witness{Signatures: []string{sig}}.String()
	return nil
}

// Withdraw pays a bolt11 invoice from the wallet (melt), taking change on
// blank outputs.
func (w *Wallet) Withdraw(ctx context.Context, invoice string) (*payment.MeltQuote, error) {
	q, err := w.client.CreateMeltQuote(ctx, invoice, w.cfg.Unit)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return nil, err
	}
	need := q.Amount + q.FeeReserve
	inputs, sum, err := w.selectProofs(need)
	if err != nil {
		return nil, err
	}
	over := sum - w.fee(len(inputs)) - q.Amount
	outs, ctr, err := w.newOutputs(roleKeep, make([]uint64, max(1, bits.Len64(over))))
	if err != nil {
		return nil, err
	}
	o := &op{ID: newOpID(), Kind: "melt", Quote: q.Quote, Amount: q.Amount, Inputs: inputs, Outputs: outs}
	var paid *payment.MeltQuote
	_, err = w.run(o, ctr, func() ([]payment.BlindSignature, error) {
		var err error
		paid, err = w.client.Melt(ctx, q.Quote, inputs, blinded(outs))
		if err != nil {
			return nil, err
		}
		if paid.State != "PAID" {
			return nil, fmt.Errorf("wallet: melt state %s", paid.State)
		}
		return paid.Change, nil
	})
	return paid, err
}

// fundTimeout bounds a funding swap once sent, whatever its caller.
const fundTimeout = 2 * time.Minute

// Fund swaps ecash into a channel's funding token and attaches the proofs
// to the channel. The channel's keyset must be the wallet's. It spends an
// exact bundle if the wallet holds one, else it splits larger proofs and
// keeps the change.
func (w *Wallet) Fund(ctx context.Context, ch *payment.Channel) error {
	return w.fund(ctx, ch, false)
}

// FundExact is Fund from an exact bundle of proofs (see Bundle): the swap
// has the funding outputs only, no change. Without such proofs it fails
// with ErrNoBundle and calls nothing.
func (w *Wallet) FundExact(ctx context.Context, ch *payment.Channel) error {
	return w.fund(ctx, ch, true)
}

func (w *Wallet) fund(ctx context.Context, ch *payment.Channel, exact bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return err
	}
	// A funding that waited for the wallet past its caller's end (the
	// circuit closed) is not sent. One that is sent runs to its answer:
	// the mint would carry out a swap whose request was abandoned, and
	// the wallet would hold its inputs as pending until a recovery, spent
	// or not, short of them for every funding meanwhile.
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fundTimeout)
	defer cancel()
	if ch.Params().KeysetID != w.ks.ID {
		return errors.New("wallet: channel keyset is not the wallet's")
	}
	var outs []output
	var total uint64
	for _, d := range ch.FundingOutputs() {
		outs = append(outs, output{Role: roleFund, Amount: d.Amount, ID: w.ks.ID, Secret: d.Secret,
			R: hex.EncodeToString(d.R.Serialize()), B: d.BHex})
		total += d.Amount
	}
	inputs, ok := w.exactInputs(w.bundle(total))
	var ctr map[string]uint32
	if !ok {
		if exact {
			return ErrNoBundle
		}
		var sum uint64
		var err error
		if inputs, sum, err = w.selectProofs(total); err != nil {
			return err
		}
		var keep []output
		if keep, ctr, err = w.newOutputs(roleKeep, payment.PowersOfTwo(sum-w.fee(len(inputs))-total)); err != nil {
			return err
		}
		outs = append(outs, keep...)
	}
	o := &op{ID: newOpID(), Kind: "fund", Amount: total, Channel: ch.ID().String(), Inputs: inputs, Outputs: outs}
	if _, err := w.run(o, ctr, func() ([]payment.BlindSignature, error) {
		return w.client.Swap(ctx, inputs, blinded(outs))
	}); err != nil {
		return err
	}
	return ch.AttachFunding(w.funded[ch.ID().String()])
}
