package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/elnosh/gonuts/crypto"
)

// ErrDLEQ: a NUT-12 DLEQ proof is missing or does not verify.
var ErrDLEQ = errors.New("payment: DLEQ proof does not verify")

// HashToCurve maps a message to a point (NUT-00).
func HashToCurve(msg []byte) (*btcec.PublicKey, error) {
	return crypto.HashToCurve(msg)
}

// BlindMessage returns B_ = HashToCurve(secret) + r·G (NUT-00).
func BlindMessage(secret string, r *btcec.PrivateKey) (*btcec.PublicKey, error) {
	B, _, err := crypto.BlindMessage(secret, r)
	if err != nil {
		return nil, fmt.Errorf("payment: blind: %w", err)
	}
	return B, nil
}

// SignBlinded is the mint's signature C_ = k·B_ (NUT-00).
func SignBlinded(B *btcec.PublicKey, k *btcec.PrivateKey) *btcec.PublicKey {
	return crypto.SignBlindedMessage(B, k)
}

// Unblind returns C = C_ - r·K (NUT-00).
func Unblind(C *btcec.PublicKey, r *btcec.PrivateKey, K *btcec.PublicKey) *btcec.PublicKey {
	return crypto.UnblindSignature(C, r, K)
}

// VerifyUnblinded is the mint's check that C = k·HashToCurve(secret).
func VerifyUnblinded(secret string, k *btcec.PrivateKey, C *btcec.PublicKey) bool {
	return crypto.Verify(secret, k, C)
}

// HashE is the NUT-12 challenge hash of points (uncompressed hex,
// concatenated, SHA256).
func HashE(points ...*btcec.PublicKey) [32]byte {
	return crypto.HashE(points)
}

// GenerateDLEQ proves that C_ = a·B_ for the key A = a·G, with the
// deterministic nonce of NUT-12:
//
//	r = HMAC-SHA256(a, "Cashu_DLEQ_R_v1" || A || B_ || C_ || ctr)
//
// (points uncompressed, ctr from 0 until 1 <= r < n).
func GenerateDLEQ(a *btcec.PrivateKey, B, C *btcec.PublicKey) (e, s [32]byte, err error) {
	A := a.PubKey()
	key := a.Key.Bytes()
	mac := hmac.New(sha256.New, key[:])
	var r btcec.ModNScalar
	for ctr := 0; ; ctr++ {
		if ctr > 255 {
			return e, s, errors.New("payment: no DLEQ nonce found")
		}
		mac.Reset()
		mac.Write([]byte("Cashu_DLEQ_R_v1"))
		mac.Write(A.SerializeUncompressed())
		mac.Write(B.SerializeUncompressed())
		mac.Write(C.SerializeUncompressed())
		mac.Write([]byte{byte(ctr)})
		if overflow := r.SetByteSlice(mac.Sum(nil)); !overflow && !r.IsZero() {
			break
		}
	}
	R1 := btcec.PrivKeyFromScalar(&r).PubKey()
	R2 := SignBlinded(B, btcec.PrivKeyFromScalar(&r))
	e = HashE(R1, R2, A, C)
	var es, ss btcec.ModNScalar
	es.SetBytes(&e)
	ss.Mul2(&es, &a.Key).Add(&r)
	r.Zero()
	return e, ss.Bytes(), nil
}

// VerifyDLEQ checks a NUT-12 proof (e, s) that C_ = a·B_ for A = a·G.
// Scalars outside [0, n) are refused.
func VerifyDLEQ(e, s [32]byte, A, B, C *btcec.PublicKey) bool {
	var es, ss btcec.ModNScalar
	if es.SetBytes(&e) != 0 || ss.SetBytes(&s) != 0 {
		return false
	}
	return crypto.VerifyDLEQ(btcec.PrivKeyFromScalar(&es), btcec.PrivKeyFromScalar(&ss), A, B, C)
}

// VerifyBlindSignatureDLEQ checks the DLEQ proof of a mint's promise on B_
// against the mint key A for its amount.
func VerifyBlindSignatureDLEQ(sig BlindSignature, B *btcec.PublicKey, A *btcec.PublicKey) error {
	if sig.DLEQ == nil {
		return fmt.Errorf("%w: missing", ErrDLEQ)
	}
	C, err := parsePubKeyHex(sig.C)
	if err != nil {
		return fmt.Errorf("%w: bad C_", ErrDLEQ)
	}
	e, s, err := parseES(sig.DLEQ)
	if err != nil || !VerifyDLEQ(e, s, A, B, C) {
		return ErrDLEQ
	}
	return nil
}

// VerifyProofDLEQ checks the DLEQ proof carried by a proof (NUT-12, user to
// user): it reblinds the secret with r and checks the promise C_ = C + r·A.
func VerifyProofDLEQ(p Proof, A *btcec.PublicKey) error {
	if p.DLEQ == nil || p.DLEQ.R == "" {
		return fmt.Errorf("%w: missing", ErrDLEQ)
	}
	e, s, err := parseES(p.DLEQ)
	if err != nil {
		return ErrDLEQ
	}
	r, err := parseScalarHex(p.DLEQ.R)
	if err != nil {
		return fmt.Errorf("%w: bad r", ErrDLEQ)
	}
	C, err := parsePubKeyHex(p.C)
	if err != nil {
		return fmt.Errorf("%w: bad C", ErrDLEQ)
	}
	B, err := BlindMessage(p.Secret, r)
	if err != nil {
		return ErrDLEQ
	}
	if !VerifyDLEQ(e, s, A, B, Reblind(C, r, A)) {
		return ErrDLEQ
	}
	return nil
}

// Reblind returns C_ = C + r·A, the promise a proof was unblinded from.
func Reblind(C *btcec.PublicKey, r *btcec.PrivateKey, A *btcec.PublicKey) *btcec.PublicKey {
	var neg btcec.ModNScalar
	neg.NegateVal(&r.Key)
	return Unblind(C, btcec.PrivKeyFromScalar(&neg), A)
}

func parseES(d *DLEQProof) (e, s [32]byte, err error) {
	if err = decodeHex32(d.E, &e); err != nil {
		return
	}
	err = decodeHex32(d.S, &s)
	return
}

func decodeHex32(h string, out *[32]byte) error {
	if len(h) != 64 {
		return errors.New("payment: want 32 bytes of hex")
	}
	_, err := hex.Decode(out[:], []byte(h))
	return err
}

// parseScalarHex parses a non-zero scalar below the group order.
func parseScalarHex(h string) (*btcec.PrivateKey, error) {
	var b [32]byte
	if err := decodeHex32(h, &b); err != nil {
		return nil, err
	}
	return scalarFromBytes(b)
}

func scalarFromBytes(b [32]byte) (*btcec.PrivateKey, error) {
	var k btcec.ModNScalar
	if k.SetBytes(&b) != 0 || k.IsZero() {
		return nil, errors.New("payment: scalar out of range")
	}
	return btcec.PrivKeyFromScalar(&k), nil
}
