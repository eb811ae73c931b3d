package payment

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
)

// Limits on channel parameters. They keep an open message small and bound
// the work a relay does for one channel.
const (
	MaxMintURLLen  = 200
	MaxUnitLen     = 16
	MaxKeysetIDLen = 66
	// MaxFeePPK: input fees of 1000 ppk or more make an output worthless.
	MaxFeePPK = 999
	// MaxFundingProofs bounds the proofs of a funding token.
	MaxFundingProofs = 64
	// MaxCommitmentOutputs bounds the outputs one party's side of any
	// commitment may need.
	MaxCommitmentOutputs = 256
)

// ErrParams: channel parameters are malformed or inconsistent.
var ErrParams = errors.New("payment: bad channel parameters")

// ChannelParams are the parameters of a Spilman channel (draft, "Channel
// parameters"). Amounts are in the mint's Unit; times are unix seconds.
type ChannelParams struct {
	Mint            string
	Unit            string
	Capacity        uint64 // the largest balance the receiver can be paid
	FundingAmount   uint64 // nominal value of the funding token
	KeysetID        string
	InputFeePPK     uint64
	MaxOutputAmount uint64 // 0: no maximum
	SetupTime       uint64
	ExpiryTime      uint64 // locktime of the funding token
	Sender          *btcec.PublicKey
	Receiver        *btcec.PublicKey
}

// Validate checks the syntax of the parameters (not whether a receiver
// accepts them).
func (p *ChannelParams) Validate() error {
	switch {
	case p.Sender == nil || p.Receiver == nil:
		return fmt.Errorf("%w: missing key", ErrParams)
	case p.Sender.IsEqual(p.Receiver):
		return fmt.Errorf("%w: sender and receiver keys are equal", ErrParams)
	case !printable(p.Mint, MaxMintURLLen) || p.Mint == "":
		return fmt.Errorf("%w: mint URL", ErrParams)
	case !lowerAlnum(p.Unit, MaxUnitLen):
		return fmt.Errorf("%w: unit", ErrParams)
	case !isHexID(p.KeysetID):
		return fmt.Errorf("%w: keyset id", ErrParams)
	case p.InputFeePPK > MaxFeePPK:
		return fmt.Errorf("%w: input fee", ErrParams)
	case p.Capacity == 0 || p.FundingAmount < p.Capacity:
		return fmt.Errorf("%w: capacity", ErrParams)
	case p.ExpiryTime <= p.SetupTime:
		return fmt.Errorf("%w: expiry before setup", ErrParams)
	}
	return nil
}

// printable: ASCII 0x21..0x7e without '|', which separates the fields of
// the channel id string.
func printable(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == '|' {
			return false
		}
	}
	return true
}

func lowerAlnum(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < 'a' || s[i] > 'z') && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

func isHexID(s string) bool {
	if len(s) != 16 && len(s) != MaxKeysetIDLen {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// ChannelSecret is SHA256("Cashu_Spilman_channel_secret_v1" || x(priv·peer)):
// the sender computes it with its key and the receiver's, the receiver with
// its key and the sender's.
func ChannelSecret(priv *btcec.PrivateKey, peer *btcec.PublicKey) [32]byte {
	zx := ECDHX(priv, peer)
	h := sha256.New()
	h.Write([]byte("Cashu_Spilman_channel_secret_v1"))
	h.Write(zx[:])
	return [32]byte(h.Sum(nil))
}

// ChannelID identifies a channel: SHA256 of the parameters and the channel
// secret, joined by '|'.
type ChannelID [32]byte

// String is the lowercase hex id.
func (id ChannelID) String() string { return hex.EncodeToString(id[:]) }

// idString is the pipe-delimited string whose hash is the channel id.
func (p *ChannelParams) idString(secret [32]byte) string {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	return strings.Join([]string{
		p.Mint, p.Unit, u(p.Capacity), u(p.FundingAmount),
		p.KeysetID, u(p.InputFeePPK), u(p.MaxOutputAmount),
		u(p.SetupTime), pubHexOf(p.Sender), pubHexOf(p.Receiver),
		u(p.ExpiryTime), hex.EncodeToString(secret[:]),
	}, "|")
}

// ID computes the channel id for the channel secret.
func (p *ChannelParams) ID(secret [32]byte) ChannelID {
	return sha256.Sum256([]byte(p.idString(secret)))
}

func pubHexOf(k *btcec.PublicKey) string { return hex.EncodeToString(k.SerializeCompressed()) }

// Keyset is what a channel needs of a mint keyset: its id, unit, fee and
// the mint's public key for each amount.
type Keyset struct {
	ID          string
	Unit        string
	InputFeePPK uint64
	Keys        map[uint64]*btcec.PublicKey
}

func (k *Keyset) amounts() []uint64 {
	out := make([]uint64, 0, len(k.Keys))
	for a := range k.Keys {
		out = append(out, a)
	}
	return out
}

// UnitsCeil converts msat to a channel unit, rounding up: both sides sign
// the ceiling, so a channel overpays by less than one unit.
func UnitsCeil(msat uint64, unit string) (uint64, error) {
	switch unit {
	case "msat":
		return msat, nil
	case "sat":
		return msat/1000 + min(msat%1000, 1), nil
	default:
		return 0, fmt.Errorf("%w: no msat conversion for unit %q", ErrParams, unit)
	}
}
