package payment

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

var (
	// ErrBadSignature: a balance signature does not verify.
	ErrBadSignature = errors.New("payment: balance signature does not verify")
	// ErrOverCapacity: a balance above the channel capacity.
	ErrOverCapacity = errors.New("payment: balance exceeds channel capacity")
	// ErrNotFunded: the channel has no funding proofs yet.
	ErrNotFunded = errors.New("payment: channel has no funding proofs")
)

// SignatureSize is the size of a BIP-340 signature.
const SignatureSize = 64

// Split is how a commitment of one balance divides the funding token: the
// nominal values of the receiver's and the sender's commitment outputs.
type Split struct {
	Receiver, Sender uint64
}

// Split computes the commitment values for a receiver balance:
// c = inverse(balance), a = value_after_fees(funding) - c.
func (ch *Channel) Split(balance uint64) (Split, error) {
	if balance > ch.params.Capacity {
		return Split{}, ErrOverCapacity
	}
	c := uint64(0)
	if balance > 0 {
		var err error
		if c, err = ch.sel.inverse(balance, ch.afterStage1); err != nil {
			return Split{}, err
		}
	}
	return Split{Receiver: c, Sender: ch.afterStage1 - c}, nil
}

// CommitmentOutputs are the outputs of the commitment for a balance, in
// transaction order: ascending amount; for one amount the receiver's
// outputs first, then the sender's, each by index.
func (ch *Channel) CommitmentOutputs(balance uint64) ([]*DetOutput, error) {
	var out []*DetOutput
	err := ch.eachCommitmentOutput(balance, func(o *DetOutput) { out = append(out, o) })
	return out, err
}

func (ch *Channel) eachCommitmentOutput(balance uint64, f func(*DetOutput)) error {
	split, err := ch.Split(balance)
	if err != nil {
		return err
	}
	counts := [2][]uint64{ch.sel.counts(split.Receiver), ch.sel.counts(split.Sender)}
	for i := len(ch.sel.avail) - 1; i >= 0; i-- {
		a := ch.sel.avail[i]
		for side := range counts {
			for idx := uint64(0); idx < counts[side][i]; idx++ {
				o, err := ch.commitOutput(side, a, idx)
				if err != nil {
					return err
				}
				f(o)
			}
		}
	}
	return nil
}

// CommitmentHash is SHA256 of the NUT-11 SIG_ALL message of the commitment
// swap for a balance: the funding proofs' secrets and Cs, then the amount
// and B_ of every commitment output.
func (ch *Channel) CommitmentHash(balance uint64) ([32]byte, error) {
	var sum [32]byte
	if ch.proofs == nil {
		return sum, ErrNotFunded
	}
	h := sha256.New()
	h.Write(ch.prefix)
	var buf []byte
	err := ch.eachCommitmentOutput(balance, func(o *DetOutput) {
		buf = strconv.AppendUint(buf[:0], o.Amount, 10)
		buf = append(buf, o.BHex...)
		h.Write(buf)
	})
	return [32]byte(h.Sum(nil)), err
}

// CommitmentSwap is the swap that closes the channel at a balance, without
// witness.
func (ch *Channel) CommitmentSwap(balance uint64) ([]Proof, []BlindedMessage, error) {
	if ch.proofs == nil {
		return nil, nil, ErrNotFunded
	}
	outs, err := ch.CommitmentOutputs(balance)
	if err != nil {
		return nil, nil, err
	}
	msgs := make([]BlindedMessage, len(outs))
	for i, o := range outs {
		msgs[i] = o.BlindedMessage(ch.keyset.ID)
	}
	inputs := make([]Proof, len(ch.proofs))
	for i, p := range ch.proofs {
		inputs[i] = Proof{Amount: p.Amount, ID: p.ID, Secret: p.Secret, C: p.C}
	}
	return inputs, msgs, nil
}

// VerifyBalance checks the sender's signature on the commitment for a
// balance, locally, against the outputs derived at open.
func (ch *Channel) VerifyBalance(balance uint64, sig [SignatureSize]byte) error {
	s, err := schnorr.ParseSignature(sig[:])
	if err != nil {
		return ErrBadSignature
	}
	h, err := ch.CommitmentHash(balance)
	if err != nil {
		return err
	}
	if !s.Verify(h[:], ch.senderKey) {
		return ErrBadSignature
	}
	return nil
}

// Signer signs commitments for one party of a channel with that party's
// blinded stage-1 key.
type Signer struct {
	ch  *Channel
	key *btcec.PrivateKey
}

// SenderSigner returns the signer of the channel's sender, whose key is
// senderKey.
func (ch *Channel) SenderSigner(senderKey *btcec.PrivateKey) (*Signer, error) {
	return ch.signer(senderKey, ch.params.Sender, ch.senderTweak)
}

// ReceiverSigner returns the signer of the channel's receiver.
func (ch *Channel) ReceiverSigner(receiverKey *btcec.PrivateKey) (*Signer, error) {
	return ch.signer(receiverKey, ch.params.Receiver, ch.receiverTweak)
}

// RefundSigner returns the sender's signer for the refund pathway, valid
// after the expiry.
func (ch *Channel) RefundSigner(senderKey *btcec.PrivateKey) (*Signer, error) {
	return ch.signer(senderKey, ch.params.Sender, ch.refundTweak)
}

func (ch *Channel) signer(p *btcec.PrivateKey, P *btcec.PublicKey, tweak *btcec.PrivateKey) (*Signer, error) {
	if p.PubKey().X().Cmp(P.X()) != 0 {
		return nil, fmt.Errorf("%w: key is not the party's", ErrP2BK)
	}
	k, err := stage1PrivKey(p, tweak)
	if err != nil {
		return nil, err
	}
	return &Signer{ch: ch, key: k}, nil
}

// SignBalance signs the commitment for a balance.
func (s *Signer) SignBalance(balance uint64) ([SignatureSize]byte, error) {
	var out [SignatureSize]byte
	h, err := s.ch.CommitmentHash(balance)
	if err != nil {
		return out, err
	}
	return s.signHash(h[:])
}

func (s *Signer) signHash(h []byte) ([SignatureSize]byte, error) {
	var out [SignatureSize]byte
	sig, err := schnorr.Sign(s.key, h)
	if err != nil {
		return out, fmt.Errorf("payment: sign commitment: %w", err)
	}
	copy(out[:], sig.Serialize())
	return out, nil
}

// CloseSwap is the swap the receiver sends to the mint to close at a
// balance: the commitment with both signatures in the first input's
// witness.
func (s *Signer) CloseSwap(balance uint64, senderSig [SignatureSize]byte) ([]Proof, []BlindedMessage, error) {
	if err := s.ch.VerifyBalance(balance, senderSig); err != nil {
		return nil, nil, err
	}
	inputs, outputs, err := s.ch.CommitmentSwap(balance)
	if err != nil {
		return nil, nil, err
	}
	mine, err := s.SignBalance(balance)
	if err != nil {
		return nil, nil, err
	}
	inputs[0].Witness = Witness{Signatures: []string{hexBytes(senderSig[:]), hexBytes(mine[:])}}.String()
	return inputs, outputs, nil
}

// RefundSwap signs a swap of the whole funding token to outputs with the
// refund key (valid once the expiry has passed).
func (s *Signer) RefundSwap(outputs []BlindedMessage) ([]Proof, error) {
	if s.ch.proofs == nil {
		return nil, ErrNotFunded
	}
	inputs, _, err := s.ch.CommitmentSwap(0)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(SwapMessage(inputs, outputs)))
	sig, err := s.signHash(h[:])
	if err != nil {
		return nil, err
	}
	inputs[0].Witness = Witness{Signatures: []string{hexBytes(sig[:])}}.String()
	return inputs, nil
}

func hexBytes(b []byte) string { return fmt.Sprintf("%x", b) }

// OutputKey derives the private key that spends a commitment output for its
// owner (NUT-28 derivation on the stage-2 tweak).
func (ch *Channel) OutputKey(o *DetOutput, owner *btcec.PrivateKey) (*btcec.PrivateKey, error) {
	var P *btcec.PublicKey
	var ctx2 string
	switch o.Context {
	case ctxReceiver:
		P, ctx2 = ch.params.Receiver, ctxReceiverStage2
	case ctxSender:
		P, ctx2 = ch.params.Sender, ctxSenderStage2
	default:
		return nil, fmt.Errorf("%w: not a commitment output", ErrP2BK)
	}
	tweak, err := ch.d.stage2Tweak(ctx2, o.Amount, o.Index, P)
	if err != nil {
		return nil, err
	}
	return BlindedPrivKey(owner, P, tweak)
}

// SenderOutputs returns every commitment output of the sender's side that
// any balance can use, by amount and index. After the receiver closed the
// channel at an unknown balance, the sender restores these (NUT-09) to find
// its share.
func (ch *Channel) SenderOutputs() ([]*DetOutput, error) {
	var out []*DetOutput
	for i, a := range ch.sel.avail {
		for idx := uint64(0); idx < ch.maxc[i]; idx++ {
			o, err := ch.commitOutput(sideSender, a, idx)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *DetOutput) int {
		if a.Amount != b.Amount {
			return cmp.Compare(a.Amount, b.Amount)
		}
		return cmp.Compare(a.Index, b.Index)
	})
	return out, nil
}
