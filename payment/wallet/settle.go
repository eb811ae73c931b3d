package wallet

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
)

// ErrChannelOpen: the channel's funding is unspent and not yet expired;
// the relay may still close it.
var ErrChannelOpen = errors.New("wallet: channel still open")

// DustError: what a closed channel left the sender is worth less than the
// mint's fee for taking it back; it stays at the mint, unspent.
type DustError struct {
	Amount uint64 // nominal value left, in the wallet's unit
}

func (e *DustError) Error() string {
	return fmt.Sprintf("wallet: reclaimable %d does not cover the fee", e.Amount)
}

// Settle takes back what a funded channel owes the sender: if the relay
// closed it, the sender's commitment outputs (restored with NUT-09, since
// the sender does not know at which balance it closed); if it did not and
// the channel expired, the whole funding token by the refund pathway.
// senderKey is the channel's sender key. It returns the amount taken back.
func (w *Wallet) Settle(ctx context.Context, ch *payment.Channel, senderKey *btcec.PrivateKey) (uint64, error) {
	funding := ch.FundingProofs()
	if funding == nil {
		return 0, payment.ErrNotFunded
	}
	ys := make([]string, len(funding))
	for i, p := range funding {
		Y, err := payment.HashToCurve([]byte(p.Secret))
		if err != nil {
			return 0, err
		}
		ys[i] = pointHex(Y.SerializeCompressed())
	}
	states, err := w.client.CheckState(ctx, ys)
	if err != nil {
		return 0, err
	}
	if len(states) > 0 && states[0].State == "SPENT" {
		return w.reclaim(ctx, ch, senderKey)
	}
	if uint64(w.cfg.Now().Unix()) < ch.Params().ExpiryTime {
		return 0, ErrChannelOpen
	}
	return w.refund(ctx, ch, senderKey)
}

// refund swaps the whole funding token into the wallet with the refund
// key.
func (w *Wallet) refund(ctx context.Context, ch *payment.Channel, senderKey *btcec.PrivateKey) (uint64, error) {
	signer, err := ch.RefundSigner(senderKey)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return 0, err
	}
	var sum uint64
	for _, p := range ch.FundingProofs() {
		sum += p.Amount
	}
	back := sum - w.fee(len(ch.FundingProofs()))
	outs, ctr, err := w.newOutputs(roleKeep, payment.PowersOfTwo(back))
	if err != nil {
		return 0, err
	}
	inputs, err := signer.RefundSwap(blinded(outs))
	if err != nil {
		return 0, err
	}
	o := &op{ID: newOpID(), Kind: "refund", Amount: back, Channel: ch.ID().String(), Inputs: inputs, Outputs: outs}
	_, err = w.run(o, ctr, func() ([]payment.BlindSignature, error) {
		return w.client.Swap(ctx, inputs, blinded(outs))
	})
	return back, err
}

// reclaim restores the sender's commitment outputs the relay's close
// created and swaps them into the wallet, signing each with its per-output
// key.
func (w *Wallet) reclaim(ctx context.Context, ch *payment.Channel, senderKey *btcec.PrivateKey) (uint64, error) {
	all, err := ch.SenderOutputs()
	if err != nil {
		return 0, err
	}
	bms := make([]payment.BlindedMessage, len(all))
	byB := make(map[string]*payment.DetOutput, len(all))
	for i, o := range all {
		bms[i] = o.BlindedMessage(ch.Params().KeysetID)
		byB[o.BHex] = o
	}
	got, sigs, err := w.client.Restore(ctx, bms)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return 0, err
	}
	var inputs []payment.Proof
	var sum uint64
	for i, g := range got {
		d, ok := byB[g.B]
		if !ok {
			continue
		}
		p, err := w.unblindDet(d, sigs[i])
		if err != nil {
			return 0, err
		}
		k, err := ch.OutputKey(d, senderKey)
		if err != nil {
			return 0, err
		}
		sig, err := payment.SignMessage(k, []byte(p.Secret))
		if err != nil {
			return 0, err
		}
		p.Witness = payment.Witness{Signatures: []string{sig}}.String()
		inputs = append(inputs, p)
		sum += p.Amount
	}
	if len(inputs) == 0 {
		return 0, nil // the relay took everything
	}
	if f := w.fee(len(inputs)); sum <= f {
		return 0, &DustError{Amount: sum}
	}
	back := sum - w.fee(len(inputs))
	outs, ctr, err := w.newOutputs(roleKeep, payment.PowersOfTwo(back))
	if err != nil {
		return 0, err
	}
	o := &op{ID: newOpID(), Kind: "reclaim", Amount: back, Channel: ch.ID().String(), Inputs: inputs, Outputs: outs}
	_, err = w.run(o, ctr, func() ([]payment.BlindSignature, error) {
		return w.client.Swap(ctx, inputs, blinded(outs))
	})
	return back, err
}

// unblindDet unblinds the mint's signature on a deterministic channel
// output; w.mu is held.
func (w *Wallet) unblindDet(d *payment.DetOutput, s payment.BlindSignature) (payment.Proof, error) {
	out := output{Amount: d.Amount, ID: s.ID, Secret: d.Secret, R: fmt.Sprintf("%x", d.R.Serialize()), B: d.BHex}
	ps, err := w.unblind([]output{out}, []payment.BlindSignature{s})
	if err != nil {
		return payment.Proof{}, err
	}
	ps[0].DLEQ = nil
	return ps[0], nil
}

// CloseChannel is the relay's close of a channel it was paid on: it adds
// its signature to the sender's on the commitment of balance and swaps the
// funding token at the mint. Its own commitment outputs join the wallet,
// each with its witness signed in advance (they are P2PK-locked to
// per-output keys); the sender's are the sender's. It returns their
// nominal value.
func (w *Wallet) CloseChannel(ctx context.Context, ch *payment.Channel, receiverKey *btcec.PrivateKey, balance uint64, senderSig [payment.SignatureSize]byte) (uint64, error) {
	signer, err := ch.ReceiverSigner(receiverKey)
	if err != nil {
		return 0, err
	}
	inputs, bms, err := signer.CloseSwap(balance, senderSig)
	if err != nil {
		return 0, err
	}
	commit, err := ch.CommitmentOutputs(balance)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.loaded(); err != nil {
		return 0, err
	}
	if ch.Params().KeysetID != w.ks.ID {
		return 0, errors.New("wallet: channel keyset is not the wallet's")
	}
	outs := make([]output, len(commit))
	var mine uint64
	for i, d := range commit {
		outs[i] = output{Role: roleNone, Amount: d.Amount, ID: w.ks.ID, Secret: d.Secret,
			R: fmt.Sprintf("%x", d.R.Serialize()), B: d.BHex}
		if d.Context != "receiver" {
			continue
		}
		k, err := ch.OutputKey(d, receiverKey)
		if err != nil {
			return 0, err
		}
		sig, err := payment.SignMessage(k, []byte(d.Secret))
		if err != nil {
			return 0, err
		}
		outs[i].Role, outs[i].Witness = roleKeep, payment.Witness{Signatures: []string{sig}}.String()
		mine += d.Amount
	}
	o := &op{ID: newOpID(), Kind: "close", Amount: mine, Channel: ch.ID().String(), Inputs: inputs, Outputs: outs}
	_, err = w.run(o, nil, func() ([]payment.BlindSignature, error) {
		return w.client.Swap(ctx, inputs, bms)
	})
	return mine, err
}
