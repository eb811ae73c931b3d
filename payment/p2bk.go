package payment

import (
	"crypto/sha256"
	"errors"

	"github.com/btcsuite/btcd/btcec/v2"
)

// ErrP2BK: a NUT-28 derivation failed (no valid scalar, or the key does not
// belong to the private key).
var ErrP2BK = errors.New("payment: P2BK derivation failed")

const p2bkDomain = "Cashu_P2BK_v1"

// ECDHX returns the x coordinate of priv·pub, the shared secret Zx of
// NUT-28 and of the channel secret.
func ECDHX(priv *btcec.PrivateKey, pub *btcec.PublicKey) [32]byte {
	var p, r btcec.JacobianPoint
	pub.AsJacobian(&p)
	btcec.ScalarMultNonConst(&priv.Key, &p, &r)
	r.ToAffine()
	return *r.X.Bytes()
}

// P2BKTweak is the NUT-28 blinding scalar of a slot:
// SHA256("Cashu_P2BK_v1" || Zx || slot), retried once with a trailing 0xff.
func P2BKTweak(zx [32]byte, slot byte) (*btcec.PrivateKey, error) {
	h := sha256.New()
	for _, extra := range [][]byte{nil, {0xff}} {
		h.Reset()
		h.Write([]byte(p2bkDomain))
		h.Write(zx[:])
		h.Write([]byte{slot})
		h.Write(extra)
		if k, err := scalarFromBytes([32]byte(h.Sum(nil))); err == nil {
			return k, nil
		}
	}
	return nil, ErrP2BK
}

// AddTweak returns P + r·G.
func AddTweak(P *btcec.PublicKey, r *btcec.PrivateKey) *btcec.PublicKey {
	var p, rg, sum btcec.JacobianPoint
	P.AsJacobian(&p)
	btcec.ScalarBaseMultNonConst(&r.Key, &rg)
	btcec.AddNonConst(&p, &rg, &sum)
	sum.ToAffine()
	return btcec.NewPublicKey(&sum.X, &sum.Y)
}

// BlindedPrivKey derives the private key of P' = P + r·G for the owner of p
// (NUT-28): p + r if p·G = P, -p + r if p·G only shares P's x coordinate.
func BlindedPrivKey(p *btcec.PrivateKey, P *btcec.PublicKey, r *btcec.PrivateKey) (*btcec.PrivateKey, error) {
	natural := p.PubKey()
	if natural.X().Cmp(P.X()) != 0 {
		return nil, ErrP2BK
	}
	var k btcec.ModNScalar
	k.Set(&p.Key)
	if natural.Y().Cmp(P.Y()) != 0 {
		k.Negate()
	}
	k.Add(&r.Key)
	if k.IsZero() {
		return nil, ErrP2BK
	}
	return btcec.PrivKeyFromScalar(&k), nil
}
