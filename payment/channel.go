package payment

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
)

// ErrFunding: funding proofs do not match the channel or their DLEQ proofs
// fail.
var ErrFunding = errors.New("payment: bad funding proofs")

// Channel is the state both ends of a Spilman channel derive from its
// parameters and channel secret: the channel id, the blinded stage-1 keys,
// every funding output and every commitment output any balance can need.
// It is built once (NewChannel), given its funding proofs once
// (AttachFunding), and is read-only and safe for concurrent use after that.
type Channel struct {
	params ChannelParams
	keyset Keyset
	id     ChannelID
	d      deriver
	sel    amountSelector
	// afterStage1 is the funding value left after the stage-1 swap fee.
	afterStage1 uint64

	senderTweak, receiverTweak, refundTweak *btcec.PrivateKey
	senderKey, receiverKey, refundKey       *btcec.PublicKey

	funding []*DetOutput // ascending amount, then index
	proofs  []Proof      // funding proofs, once attached
	prefix  []byte       // secret_i || C_i of the proofs

	// maxc bounds, for each amount of sel.avail, the outputs of it a
	// commitment of any balance can take.
	maxc []uint64
	// commit caches, by side (receiver, sender), the commitment outputs
	// derived so far: each costs several scalar multiplications, and a
	// channel uses few of them, so they are derived when first needed.
	commitMu sync.Mutex
	commit   [2]map[amountIndex]*DetOutput
}

type amountIndex struct{ amount, index uint64 }

const (
	sideReceiver = 0
	sideSender   = 1
)

var sideContexts = [2][2]string{
	{ctxReceiver, ctxReceiverStage2},
	{ctxSender, ctxSenderStage2},
}

// NewChannel derives a channel from its parameters, the mint keyset they
// name and the channel secret (see ChannelSecret). It fails if the
// parameters are malformed, do not match the keyset, cannot fund the
// capacity or would need more outputs than the limits allow.
func NewChannel(p ChannelParams, ks Keyset, secret [32]byte) (*Channel, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if ks.ID != p.KeysetID || ks.Unit != p.Unit || ks.InputFeePPK != p.InputFeePPK {
		return nil, fmt.Errorf("%w: keyset does not match", ErrParams)
	}
	sel, err := newAmountSelector(ks.amounts(), p.MaxOutputAmount, p.InputFeePPK)
	if err != nil {
		return nil, err
	}
	ch := &Channel{params: p, keyset: ks, sel: sel, id: p.ID(secret)}
	ch.d = deriver{secret: secret, idHex: ch.id.String()}
	ch.afterStage1 = sel.valueAfterFees(p.FundingAmount)
	if sel.valueAfterFees(ch.afterStage1) < p.Capacity {
		return nil, fmt.Errorf("%w: funding amount does not cover the capacity after fees", ErrParams)
	}
	if err := ch.deriveKeys(); err != nil {
		return nil, err
	}
	if err := ch.deriveFunding(); err != nil {
		return nil, err
	}
	if err := ch.deriveCommitments(); err != nil {
		return nil, err
	}
	return ch, nil
}

// FundingAmountFor is the smallest funding amount for a capacity:
// inverse(inverse(capacity)), searched up to limit.
func FundingAmountFor(capacity uint64, ks Keyset, maxOutput, limit uint64) (uint64, error) {
	sel, err := newAmountSelector(ks.amounts(), maxOutput, ks.InputFeePPK)
	if err != nil {
		return 0, err
	}
	c, err := sel.inverse(capacity, limit)
	if err != nil {
		return 0, err
	}
	return sel.inverse(c, limit)
}

func (ch *Channel) deriveKeys() error {
	var err error
	if ch.senderTweak, err = ch.d.stage1Tweak(ctxSenderStage1); err != nil {
		return err
	}
	if ch.receiverTweak, err = ch.d.stage1Tweak(ctxReceiverStage1); err != nil {
		return err
	}
	if ch.refundTweak, err = ch.d.stage1Tweak(ctxSenderRefund); err != nil {
		return err
	}
	ch.senderKey = stage1Key(ch.params.Sender, ch.senderTweak)
	ch.receiverKey = stage1Key(ch.params.Receiver, ch.receiverTweak)
	ch.refundKey = stage1Key(ch.params.Sender, ch.refundTweak)
	if ch.refundKey.X().Cmp(ch.senderKey.X()) == 0 || ch.receiverKey.X().Cmp(ch.senderKey.X()) == 0 {
		return fmt.Errorf("%w: blinded keys collide", ErrParams)
	}
	return nil
}

// fundingSecret is the 2-of-2 secret of a funding output.
func (ch *Channel) fundingSecret(amount, index uint64) Secret {
	return Secret{
		Kind:  KindP2PK,
		Nonce: ch.d.nonce(ctxFunding, amount, index),
		Data:  pubHexOf(ch.senderKey),
		Tags: [][]string{
			{TagPubkeys, pubHexOf(ch.receiverKey)},
			{TagRefund, pubHexOf(ch.refundKey)},
			{TagNSigs, "2"},
			{TagLocktime, fmt.Sprint(ch.params.ExpiryTime)},
			{TagSigFlag, "SIG_ALL"},
		},
	}
}

func (ch *Channel) deriveFunding() error {
	counts := ch.sel.counts(ch.params.FundingAmount)
	var n uint64
	for _, c := range counts {
		n += c
	}
	if n > MaxFundingProofs {
		return fmt.Errorf("%w: funding needs %d proofs, more than %d", ErrParams, n, MaxFundingProofs)
	}
	for i := len(counts) - 1; i >= 0; i-- {
		a := ch.sel.avail[i]
		for idx := uint64(0); idx < counts[i]; idx++ {
			o, err := ch.d.output(ctxFunding, a, idx, ch.fundingSecret(a, idx))
			if err != nil {
				return err
			}
			ch.funding = append(ch.funding, o)
		}
	}
	return nil
}

// deriveCommitments checks that a commitment of any balance needs at
// most MaxCommitmentOutputs outputs per side; the outputs themselves are
// derived on first use (commitOutput).
func (ch *Channel) deriveCommitments() error {
	ch.maxc = ch.sel.maxCounts(ch.afterStage1)
	var n uint64
	for _, c := range ch.maxc {
		n += c
	}
	if n > MaxCommitmentOutputs {
		return fmt.Errorf("%w: commitments may need %d outputs per side, more than %d", ErrParams, n, MaxCommitmentOutputs)
	}
	return nil
}

// commitOutput returns the commitment output of side for the idx-th
// output of amount a, deriving it the first time.
func (ch *Channel) commitOutput(side int, a, idx uint64) (*DetOutput, error) {
	ch.commitMu.Lock()
	defer ch.commitMu.Unlock()
	if o, ok := ch.commit[side][amountIndex{a, idx}]; ok {
		return o, nil
	}
	i := slices.Index(ch.sel.avail, a)
	if i < 0 || idx >= ch.maxc[i] {
		return nil, fmt.Errorf("%w: no commitment output %d/%d", ErrAmount, a, idx)
	}
	owner := [2]*btcec.PublicKey{ch.params.Receiver, ch.params.Sender}[side]
	ctx, ctx2 := sideContexts[side][0], sideContexts[side][1]
	tweak, err := ch.d.stage2Tweak(ctx2, a, idx, owner)
	if err != nil {
		return nil, err
	}
	s := Secret{Kind: KindP2PK, Nonce: ch.d.nonce(ctx, a, idx), Data: pubHexOf(AddTweak(owner, tweak))}
	o, err := ch.d.output(ctx, a, idx, s)
	if err != nil {
		return nil, err
	}
	if ch.commit[side] == nil {
		ch.commit[side] = map[amountIndex]*DetOutput{}
	}
	ch.commit[side][amountIndex{a, idx}] = o
	return o, nil
}

// ID is the channel id.
func (ch *Channel) ID() ChannelID { return ch.id }

// Params returns the channel parameters.
func (ch *Channel) Params() ChannelParams { return ch.params }

// FundingOutputs are the outputs the sender has the mint sign to make the
// funding token, in order.
func (ch *Channel) FundingOutputs() []*DetOutput { return ch.funding }

// FundingProofs returns the attached funding proofs (nil before).
func (ch *Channel) FundingProofs() []Proof { return ch.proofs }

// UnblindFunding turns the mint's signatures on FundingOutputs into funding
// proofs, checking each DLEQ proof; the proofs carry their DLEQ with r.
func (ch *Channel) UnblindFunding(sigs []BlindSignature) ([]Proof, error) {
	if len(sigs) != len(ch.funding) {
		return nil, fmt.Errorf("%w: %d signatures for %d outputs", ErrFunding, len(sigs), len(ch.funding))
	}
	proofs := make([]Proof, len(sigs))
	for i, s := range sigs {
		o := ch.funding[i]
		A := ch.keyset.Keys[o.Amount]
		if s.Amount != o.Amount || s.ID != ch.keyset.ID {
			return nil, fmt.Errorf("%w: signature %d is for another output", ErrFunding, i)
		}
		if err := VerifyBlindSignatureDLEQ(s, o.B, A); err != nil {
			return nil, fmt.Errorf("signature %d: %w", i, err)
		}
		Cb, _ := parsePubKeyHex(s.C) // parsed by the DLEQ check
		C := Unblind(Cb, o.R, A)
		proofs[i] = Proof{
			Amount: o.Amount, ID: ch.keyset.ID, Secret: o.Secret, C: pubHexOf(C),
			DLEQ: &DLEQProof{E: s.DLEQ.E, S: s.DLEQ.S, R: hexKey(o.R)},
		}
	}
	return proofs, nil
}

// AttachFunding checks funding proofs against the channel (amounts,
// secrets, keyset, the DLEQ proof of each against the deterministic
// blinding factor) and keeps them. It is called once, before the channel is
// shared.
func (ch *Channel) AttachFunding(proofs []Proof) error {
	if ch.proofs != nil {
		return fmt.Errorf("%w: already attached", ErrFunding)
	}
	if len(proofs) != len(ch.funding) {
		return fmt.Errorf("%w: %d proofs, want %d", ErrFunding, len(proofs), len(ch.funding))
	}
	var prefix []byte
	for i, p := range proofs {
		o := ch.funding[i]
		if p.Amount != o.Amount || p.ID != ch.keyset.ID || p.Secret != o.Secret {
			return fmt.Errorf("%w: proof %d is not the deterministic funding output", ErrFunding, i)
		}
		if err := ch.checkFundingDLEQ(p, o); err != nil {
			return fmt.Errorf("proof %d: %w", i, err)
		}
		prefix = append(append(prefix, p.Secret...), p.C...)
	}
	ch.proofs, ch.prefix = proofs, prefix
	return nil
}

func (ch *Channel) checkFundingDLEQ(p Proof, o *DetOutput) error {
	if p.DLEQ == nil {
		return fmt.Errorf("%w: missing", ErrDLEQ)
	}
	e, s, err := parseES(p.DLEQ)
	if err != nil {
		return ErrDLEQ
	}
	C, err := parsePubKeyHex(p.C)
	if err != nil || p.C != pubHexOf(C) {
		return fmt.Errorf("%w: C is not a canonical point", ErrFunding)
	}
	A := ch.keyset.Keys[o.Amount]
	if !VerifyDLEQ(e, s, A, o.B, Reblind(C, o.R, A)) {
		return ErrDLEQ
	}
	return nil
}

func hexKey(k *btcec.PrivateKey) string { return fmt.Sprintf("%x", k.Serialize()) }
