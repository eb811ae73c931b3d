package payment

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/elnosh/gonuts/crypto"
)

// KeysetIDV1 is the deprecated NUT-02 keyset id ("00" and 14 hex digits of
// SHA256 over the keys in amount order), computed by gonuts.
func KeysetIDV1(keys map[uint64]*btcec.PublicKey) string {
	return crypto.DeriveKeysetId(keys)
}

// KeysetIDV2 is the NUT-02 keyset id: "01" || hex(SHA256("amount:key,..."
// || "|unit:" unit [|| "|input_fee_ppk:" fee] [|| "|final_expiry:" t])).
func KeysetIDV2(keys map[uint64]*btcec.PublicKey, unit string, inputFeePPK, finalExpiry uint64) string {
	amounts := make([]uint64, 0, len(keys))
	for a := range keys {
		amounts = append(amounts, a)
	}
	slices.Sort(amounts)
	parts := make([]string, len(amounts))
	for i, a := range amounts {
		parts[i] = strconv.FormatUint(a, 10) + ":" + pubHexOf(keys[a])
	}
	pre := strings.Join(parts, ",") + "|unit:" + strings.ToLower(unit)
	if inputFeePPK != 0 {
		pre += "|input_fee_ppk:" + strconv.FormatUint(inputFeePPK, 10)
	}
	if finalExpiry != 0 {
		pre += "|final_expiry:" + strconv.FormatUint(finalExpiry, 10)
	}
	h := sha256.Sum256([]byte(pre))
	return "01" + hex.EncodeToString(h[:])
}
