package payment

import (
	"encoding/hex"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
)

// NewChannelOpen builds the CHANNEL_OPEN message of a funded channel,
// signing the zero-balance commitment with the sender's signer.
func NewChannelOpen(ch *Channel, sender *Signer) (*ChannelOpen, error) {
	if ch.proofs == nil {
		return nil, ErrNotFunded
	}
	m := &ChannelOpen{Params: ch.params, Funding: make([]FundingProof, len(ch.proofs))}
	for i, p := range ch.proofs {
		f := &m.Funding[i]
		if err := decodeHexInto(f.C[:], p.C); err != nil {
			return nil, fmt.Errorf("%w: proof %d: C", ErrFunding, i)
		}
		if p.DLEQ == nil || decodeHex32(p.DLEQ.E, &f.E) != nil || decodeHex32(p.DLEQ.S, &f.S) != nil {
			return nil, fmt.Errorf("%w: proof %d: DLEQ", ErrFunding, i)
		}
	}
	sig, err := sender.SignBalance(0)
	if err != nil {
		return nil, err
	}
	m.ZeroSig = sig
	return m, nil
}

func decodeHexInto(dst []byte, h string) error {
	if len(h) != 2*len(dst) {
		return ErrField
	}
	_, err := hex.Decode(dst, []byte(h))
	return err
}

// OpenChannel is the receiver's verification of a CHANNEL_OPEN (the
// draft's "Charlie's verification"), done without the mint: the channel is
// derived from the parameters and the channel secret computed with
// receiverKey; the funding proofs must be exactly the deterministic funding
// outputs, each with a valid DLEQ proof under ks; the zero-balance
// signature must verify. The keyset ks is the one the receiver trusts for
// the parameters' mint, unit and keyset id; policy checks (expiry,
// capacity limits) are the caller's.
func OpenChannel(m *ChannelOpen, receiverKey *btcec.PrivateKey, ks Keyset) (*Channel, error) {
	p := m.Params
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.Receiver == nil || !p.Receiver.IsEqual(receiverKey.PubKey()) {
		return nil, fmt.Errorf("%w: channel is for another receiver key", ErrPolicy)
	}
	ch, err := NewChannel(p, ks, ChannelSecret(receiverKey, p.Sender))
	if err != nil {
		return nil, err
	}
	if len(m.Funding) != len(ch.funding) {
		return nil, fmt.Errorf("%w: %d proofs, want %d", ErrFunding, len(m.Funding), len(ch.funding))
	}
	proofs := make([]Proof, len(m.Funding))
	for i, f := range m.Funding {
		o := ch.funding[i]
		proofs[i] = Proof{
			Amount: o.Amount, ID: ks.ID, Secret: o.Secret, C: hex.EncodeToString(f.C[:]),
			DLEQ: &DLEQProof{E: hex.EncodeToString(f.E[:]), S: hex.EncodeToString(f.S[:]), R: hexKey(o.R)},
		}
	}
	if err := ch.AttachFunding(proofs); err != nil {
		return nil, err
	}
	if err := ch.VerifyBalance(0, m.ZeroSig); err != nil {
		return nil, fmt.Errorf("zero-balance commitment: %w", err)
	}
	return ch, nil
}
