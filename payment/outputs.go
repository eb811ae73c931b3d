package payment

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/btcsuite/btcd/btcec/v2"
)

// Output contexts of the channel draft.
const (
	ctxFunding  = "funding"
	ctxReceiver = "receiver"
	ctxSender   = "sender"
)

// Stage-1 (funding token) key contexts and the stage-2 contexts of the
// commitment outputs.
const (
	ctxSenderStage1   = "sender_stage1"
	ctxReceiverStage1 = "receiver_stage1"
	ctxSenderRefund   = "sender_stage1_refund"
	ctxReceiverStage2 = "receiver_stage2"
	ctxSenderStage2   = "sender_stage2"
)

const maxRetries = 256

// DetOutput is one deterministic output of a channel: its secret, blinding
// factor and blinded message. Both parties derive the same.
type DetOutput struct {
	Context string // funding, receiver or sender
	Amount  uint64
	Index   uint64
	Secret  string
	R       *btcec.PrivateKey
	B       *btcec.PublicKey
	BHex    string
}

// BlindedMessage returns the output as sent to the mint.
func (o *DetOutput) BlindedMessage(keysetID string) BlindedMessage {
	return BlindedMessage{Amount: o.Amount, ID: keysetID, B: o.BHex}
}

// deriver holds what the derivations of one channel hash over.
type deriver struct {
	secret [32]byte
	idHex  string
}

// hashLabel is SHA256(prefix || channel_secret || label).
func (d deriver) hashLabel(prefix, label string) [32]byte {
	h := sha256.New()
	h.Write([]byte(prefix))
	h.Write(d.secret[:])
	h.Write([]byte(label))
	return [32]byte(h.Sum(nil))
}

func (d deriver) outputLabel(ctx string, amount uint64, what string, index uint64) string {
	return d.idHex + "|" + ctx + "|" + strconv.FormatUint(amount, 10) + "|" + what + "|" + strconv.FormatUint(index, 10)
}

// nonce is hex(SHA256(channel_secret || "{id}|{ctx}|{amount}|nonce|{index}")).
func (d deriver) nonce(ctx string, amount, index uint64) string {
	h := d.hashLabel("", d.outputLabel(ctx, amount, "nonce", index))
	return hex.EncodeToString(h[:])
}

// blinding is SHA256(channel_secret || "{id}|{ctx}|{amount}|blinding|{index}").
func (d deriver) blinding(ctx string, amount, index uint64) (*btcec.PrivateKey, error) {
	k, err := scalarFromBytes(d.hashLabel("", d.outputLabel(ctx, amount, "blinding", index)))
	if err != nil {
		return nil, fmt.Errorf("payment: blinding factor for %s output: %w", ctx, err)
	}
	return k, nil
}

// stage1Tweak is the first valid
// SHA256("Cashu_Spilman_P2BK_v1" || channel_secret || "{id}|{ctx}|{retry}").
func (d deriver) stage1Tweak(ctx string) (*btcec.PrivateKey, error) {
	for retry := 0; retry < maxRetries; retry++ {
		h := d.hashLabel("Cashu_Spilman_P2BK_v1", d.idHex+"|"+ctx+"|"+strconv.Itoa(retry))
		if k, err := scalarFromBytes(h); err == nil {
			return k, nil
		}
	}
	return nil, ErrP2BK
}

// stage2Tweak is the NUT-28 slot-0 tweak for the shared secret of the
// output's ephemeral key
// SHA256("Cashu_Spilman_P2BK_ephemeral_v1" || channel_secret || "{id}|{ctx}|{amount}|{index}|{retry}")
// and the recipient's key.
func (d deriver) stage2Tweak(ctx string, amount, index uint64, recipient *btcec.PublicKey) (*btcec.PrivateKey, error) {
	for retry := 0; retry < maxRetries; retry++ {
		label := d.idHex + "|" + ctx + "|" + strconv.FormatUint(amount, 10) + "|" +
			strconv.FormatUint(index, 10) + "|" + strconv.Itoa(retry)
		e, err := scalarFromBytes(d.hashLabel("Cashu_Spilman_P2BK_ephemeral_v1", label))
		if err != nil {
			continue
		}
		return P2BKTweak(ECDHX(e, recipient), 0)
	}
	return nil, ErrP2BK
}

// evenY returns the key with an even y coordinate and the same x (BIP-340
// lift).
func evenY(P *btcec.PublicKey) *btcec.PublicKey {
	b := P.SerializeCompressed()
	b[0] = 0x02
	k, _ := btcec.ParsePubKey(b) // x is on the curve, so this parses
	return k
}

// stage1Key is a party's funding-token key: lift_x(P) + r·G.
func stage1Key(P *btcec.PublicKey, r *btcec.PrivateKey) *btcec.PublicKey {
	return AddTweak(evenY(P), r)
}

// stage1PrivKey is the private key of stage1Key for the owner of p.
func stage1PrivKey(p *btcec.PrivateKey, r *btcec.PrivateKey) (*btcec.PrivateKey, error) {
	return BlindedPrivKey(p, evenY(p.PubKey()), r)
}

// output builds a deterministic output with the given secret.
func (d deriver) output(ctx string, amount, index uint64, secret Secret) (*DetOutput, error) {
	r, err := d.blinding(ctx, amount, index)
	if err != nil {
		return nil, err
	}
	s := secret.String()
	B, err := BlindMessage(s, r)
	if err != nil {
		return nil, err
	}
	return &DetOutput{Context: ctx, Amount: amount, Index: index, Secret: s, R: r, B: B, BHex: pubHexOf(B)}, nil
}
