package payment

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

var (
	// ErrWitness: the witness is missing or unparsable.
	ErrWitness = errors.New("payment: bad witness")
	// ErrNotEnoughSignatures: fewer distinct keys signed than required.
	ErrNotEnoughSignatures = errors.New("payment: not enough valid signatures")
	// ErrSigAllMismatch: a SIG_ALL transaction mixes inputs with different
	// conditions.
	ErrSigAllMismatch = errors.New("payment: SIG_ALL inputs differ in kind, data or tags")
	// ErrPreimage: an HTLC preimage is missing or does not match.
	ErrPreimage = errors.New("payment: HTLC preimage does not match")
)

// maxWitnessSigs bounds the signatures checked per witness.
const maxWitnessSigs = 32

// Witness is the NUT-11 (and NUT-14) witness of a proof.
type Witness struct {
	Signatures []string `json:"signatures"`
	Preimage   string   `json:"preimage,omitempty"`
}

// String encodes the witness as the JSON string carried in Proof.Witness.
func (w Witness) String() string {
	b, _ := json.Marshal(w) // strings always marshal
	return string(b)
}

func parseWitness(s string) (Witness, []*schnorr.Signature, error) {
	var w Witness
	if s == "" {
		return w, nil, nil
	}
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return w, nil, fmt.Errorf("%w: %s", ErrWitness, errKind(err))
	}
	if len(w.Signatures) > maxWitnessSigs {
		return w, nil, fmt.Errorf("%w: too many signatures", ErrWitness)
	}
	sigs := make([]*schnorr.Signature, 0, len(w.Signatures))
	for _, h := range w.Signatures {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != schnorr.SignatureSize {
			continue // an unparsable signature simply does not count
		}
		if sig, err := schnorr.ParseSignature(b); err == nil {
			sigs = append(sigs, sig)
		}
	}
	return w, sigs, nil
}

// countSigners returns how many distinct keys have a valid signature on
// hash among sigs.
func countSigners(keys []*btcec.PublicKey, sigs []*schnorr.Signature, hash []byte) int {
	n := 0
	for _, k := range keys {
		for _, s := range sigs {
			if s.Verify(hash, k) {
				n++
				break
			}
		}
	}
	return n
}

// Check verifies that witness satisfies the conditions for the message msg
// at unix time now: the locktime pathway (HTLC preimage and n_sigs of the
// keys) or, once the locktime has passed, the refund pathway (n_sigs_refund
// of the refund keys), or nothing at all after the locktime when there are
// no refund keys.
func (c *Conditions) Check(witness string, msg []byte, now int64) error {
	expired := c.Expired(now)
	if expired && len(c.Refund) == 0 {
		return nil
	}
	w, sigs, err := parseWitness(witness)
	if err != nil {
		return err
	}
	hash := sha256.Sum256(msg)
	mainErr := c.checkMain(w, sigs, hash[:])
	if mainErr == nil || !expired {
		return mainErr
	}
	if countSigners(c.Refund, sigs, hash[:]) >= c.NSigsRefund {
		return nil
	}
	return fmt.Errorf("%w: neither the locktime nor the refund pathway is satisfied", ErrNotEnoughSignatures)
}

func (c *Conditions) checkMain(w Witness, sigs []*schnorr.Signature, hash []byte) error {
	if c.Kind == KindHTLC {
		pre, err := hex.DecodeString(w.Preimage)
		h := sha256.Sum256(pre)
		if err != nil || len(pre) != 32 || string(h[:]) != string(c.HashLock) {
			return ErrPreimage
		}
	}
	if countSigners(c.Keys, sigs, hash) < c.NSigs {
		return ErrNotEnoughSignatures
	}
	return nil
}

// SwapMessage is the NUT-11 SIG_ALL message of a swap:
// secret_0 || C_0 || ... || secret_n || C_n || amount_0 || B_0 || ... || amount_m || B_m.
func SwapMessage(inputs []Proof, outputs []BlindedMessage) string {
	var b strings.Builder
	for _, p := range inputs {
		b.WriteString(p.Secret)
		b.WriteString(p.C)
	}
	for _, o := range outputs {
		b.WriteString(strconv.FormatUint(o.Amount, 10))
		b.WriteString(o.B)
	}
	return b.String()
}

// MeltMessage is the NUT-11 SIG_ALL message of a melt: the swap message
// followed by the quote id.
func MeltMessage(inputs []Proof, outputs []BlindedMessage, quoteID string) string {
	return SwapMessage(inputs, outputs) + quoteID
}

// VerifySwap enforces the spending conditions of a swap's inputs at time
// now, as a mint does: SIG_ALL if any input carries it, else each locked
// input on its own secret. Signatures of the mint (C) are not checked here.
func VerifySwap(inputs []Proof, outputs []BlindedMessage, now time.Time) error {
	return verifyTx(inputs, func() string { return SwapMessage(inputs, outputs) }, now)
}

// VerifyMelt is VerifySwap for a melt with the given quote id.
func VerifyMelt(inputs []Proof, outputs []BlindedMessage, quoteID string, now time.Time) error {
	return verifyTx(inputs, func() string { return MeltMessage(inputs, outputs, quoteID) }, now)
}

// VerifyProof enforces one proof's conditions under SIG_INPUTS. A plain
// (not well-known) secret passes.
func VerifyProof(p Proof, now time.Time) error {
	c, err := proofConditions(p)
	if err != nil || c == nil {
		return err
	}
	return c.Check(p.Witness, []byte(p.Secret), now.Unix())
}

// proofConditions returns nil conditions for a plain secret.
func proofConditions(p Proof) (*Conditions, error) {
	s, err := ParseSecret(p.Secret)
	if errors.Is(err, ErrNotWellKnown) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseConditions(s)
}

func verifyTx(inputs []Proof, msg func() string, now time.Time) error {
	conds := make([]*Conditions, len(inputs))
	secrets := make([]Secret, len(inputs))
	sigAll := false
	for i, p := range inputs {
		c, err := proofConditions(p)
		if err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
		if c != nil {
			secrets[i], _ = ParseSecret(p.Secret)
			sigAll = sigAll || c.SigFlag == SigAll
		}
		conds[i] = c
	}
	if !sigAll {
		for i, c := range conds {
			if c == nil {
				continue
			}
			if err := c.Check(inputs[i].Witness, []byte(inputs[i].Secret), now.Unix()); err != nil {
				return fmt.Errorf("input %d: %w", i, err)
			}
		}
		return nil
	}
	for i := range inputs {
		if conds[i] == nil || conds[i].SigFlag != SigAll || !sameConditions(secrets[0], secrets[i]) {
			return fmt.Errorf("input %d: %w", i, ErrSigAllMismatch)
		}
	}
	if err := conds[0].Check(inputs[0].Witness, []byte(msg()), now.Unix()); err != nil {
		return fmt.Errorf("SIG_ALL: %w", err)
	}
	return nil
}

// SignMessage returns the hex BIP-340 signature of SHA256(msg), as NUT-11
// witnesses carry it. Signing is deterministic (RFC 6979 nonces).
func SignMessage(key *btcec.PrivateKey, msg []byte) (string, error) {
	h := sha256.Sum256(msg)
	sig, err := schnorr.Sign(key, h[:])
	if err != nil {
		return "", fmt.Errorf("payment: schnorr sign: %w", err)
	}
	return hex.EncodeToString(sig.Serialize()), nil
}
