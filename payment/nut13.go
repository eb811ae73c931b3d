package payment

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/elnosh/gonuts/cashu/nuts/nut13"
	"golang.org/x/text/unicode/norm"
)

// ErrKeysetVersion: a keyset id of a version this package cannot derive
// secrets for.
var ErrKeysetVersion = errors.New("payment: unsupported keyset id version")

// SeedFromMnemonic is the BIP-39 seed of a mnemonic and passphrase
// (PBKDF2-HMAC-SHA512, 2048 rounds, NFKD). It does not check the word list
// or checksum.
func SeedFromMnemonic(mnemonic, passphrase string) ([]byte, error) {
	m := norm.NFKD.String(strings.Join(strings.Fields(mnemonic), " "))
	salt := norm.NFKD.String("mnemonic" + passphrase)
	return pbkdf2.Key(sha512.New, m, []byte(salt), 2048, 64)
}

// DeriveSecret returns the NUT-13 deterministic secret and blinding factor
// for a keyset and counter: BIP-32 (via gonuts) for version 00 keyset ids,
// HMAC-SHA256 for version 01.
func DeriveSecret(seed []byte, keysetID string, counter uint32) (string, *btcec.PrivateKey, error) {
	switch {
	case len(keysetID) == 16 && strings.HasPrefix(keysetID, "00"):
		return deriveSecretV1(seed, keysetID, counter)
	case len(keysetID) == 66 && strings.HasPrefix(keysetID, "01"):
		return deriveSecretV2(seed, keysetID, counter)
	default:
		return "", nil, ErrKeysetVersion
	}
}

func deriveSecretV1(seed []byte, keysetID string, counter uint32) (string, *btcec.PrivateKey, error) {
	master, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	if err != nil {
		return "", nil, fmt.Errorf("payment: NUT-13 master key: %w", err)
	}
	path, err := nut13.DeriveKeysetPath(master, keysetID)
	if err != nil {
		return "", nil, fmt.Errorf("payment: NUT-13 keyset path: %w", err)
	}
	secret, err := nut13.DeriveSecret(path, counter)
	if err != nil {
		return "", nil, fmt.Errorf("payment: NUT-13 secret: %w", err)
	}
	r, err := nut13.DeriveBlindingFactor(path, counter)
	if err != nil {
		return "", nil, fmt.Errorf("payment: NUT-13 blinding factor: %w", err)
	}
	return secret, r, nil
}

func deriveSecretV2(seed []byte, keysetID string, counter uint32) (string, *btcec.PrivateKey, error) {
	id, err := hex.DecodeString(keysetID)
	if err != nil {
		return "", nil, ErrKeysetVersion
	}
	msg := append([]byte("Cashu_KDF_HMAC_SHA256"), id...)
	msg = binary.BigEndian.AppendUint64(msg, uint64(counter))
	mac := hmac.New(sha256.New, seed)
	mac.Write(msg)
	mac.Write([]byte{0})
	secret := hex.EncodeToString(mac.Sum(nil))
	mac.Reset()
	mac.Write(msg)
	mac.Write([]byte{1})
	var r btcec.ModNScalar
	r.SetByteSlice(mac.Sum(nil)) // reduced mod n
	if r.IsZero() {
		return "", nil, errors.New("payment: NUT-13 blinding factor is zero")
	}
	return secret, btcec.PrivKeyFromScalar(&r), nil
}
