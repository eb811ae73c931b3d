package payment

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/btcsuite/btcd/btcec/v2"
)

// SigFlag is the NUT-11 signature flag.
type SigFlag int

const (
	// SigInputs: every input carries its own signature on its secret.
	SigInputs SigFlag = iota
	// SigAll: the first input carries signatures on the whole transaction.
	SigAll
)

// Tag names of NUT-11.
const (
	TagSigFlag     = "sigflag"
	TagNSigs       = "n_sigs"
	TagPubkeys     = "pubkeys"
	TagLocktime    = "locktime"
	TagRefund      = "refund"
	TagNSigsRefund = "n_sigs_refund"
)

// maxPathKeys bounds the keys of one multisig pathway.
const maxPathKeys = 16

// Conditions are the spending conditions of a P2PK or HTLC secret, checked
// for well-formedness by ParseConditions.
type Conditions struct {
	Kind    string
	SigFlag SigFlag
	// Keys of the locktime pathway: data (P2PK only) and the pubkeys tag.
	Keys  []*btcec.PublicKey
	NSigs int
	// Locktime is 0 for a permanent lock.
	Locktime    int64
	Refund      []*btcec.PublicKey
	NSigsRefund int
	// HashLock is the HTLC hash (data of an HTLC secret).
	HashLock []byte
}

// ParseConditions checks a well-known secret of kind P2PK or HTLC against
// the NUT-11 rules and returns its conditions. Any violation wraps
// ErrMalformedSecret: such a proof is unspendable.
func ParseConditions(s Secret) (*Conditions, error) {
	c := &Conditions{Kind: s.Kind}
	switch s.Kind {
	case KindP2PK:
		k, err := parsePubKeyHex(s.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: data is not a compressed public key", ErrMalformedSecret)
		}
		c.Keys = append(c.Keys, k)
	case KindHTLC:
		h, err := hex.DecodeString(s.Data)
		if err != nil || len(h) != 32 {
			return nil, fmt.Errorf("%w: HTLC data is not a 32-byte hash", ErrMalformedSecret)
		}
		c.HashLock = h
	default:
		return nil, fmt.Errorf("%w: unsupported kind", ErrMalformedSecret)
	}
	for _, t := range s.Tags {
		if len(t) < 2 {
			return nil, fmt.Errorf("%w: tag without a value", ErrMalformedSecret)
		}
	}
	if err := c.parseSigFlag(s); err != nil {
		return nil, err
	}
	if err := c.parseKeys(s); err != nil {
		return nil, err
	}
	if err := c.parseLocktime(s); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Conditions) parseSigFlag(s Secret) error {
	v, ok, err := s.tag(TagSigFlag)
	if err != nil || !ok {
		return err
	}
	if len(v) != 1 {
		return fmt.Errorf("%w: sigflag takes one value", ErrMalformedSecret)
	}
	switch v[0] {
	case "SIG_INPUTS":
		c.SigFlag = SigInputs
	case "SIG_ALL":
		c.SigFlag = SigAll
	default:
		return fmt.Errorf("%w: unknown sigflag", ErrMalformedSecret)
	}
	return nil
}

func (c *Conditions) parseKeys(s Secret) error {
	pub, _, err := s.tag(TagPubkeys)
	if err != nil {
		return err
	}
	if c.Keys, err = appendKeys(c.Keys, pub); err != nil {
		return err
	}
	ref, _, err := s.tag(TagRefund)
	if err != nil {
		return err
	}
	if c.Refund, err = appendKeys(nil, ref); err != nil {
		return err
	}
	if c.NSigs, err = threshold(s, TagNSigs, len(c.Keys)); err != nil {
		return err
	}
	c.NSigsRefund, err = threshold(s, TagNSigsRefund, len(c.Refund))
	return err
}

// appendKeys parses hex keys onto keys, refusing a key whose x coordinate is
// already in the pathway.
func appendKeys(keys []*btcec.PublicKey, hexKeys []string) ([]*btcec.PublicKey, error) {
	for _, h := range hexKeys {
		k, err := parsePubKeyHex(h)
		if err != nil {
			return nil, fmt.Errorf("%w: bad public key in tag", ErrMalformedSecret)
		}
		for _, o := range keys {
			if k.X().Cmp(o.X()) == 0 {
				return nil, fmt.Errorf("%w: duplicate key in pathway", ErrMalformedSecret)
			}
		}
		keys = append(keys, k)
	}
	if len(keys) > maxPathKeys {
		return nil, fmt.Errorf("%w: too many keys", ErrMalformedSecret)
	}
	return keys, nil
}

// threshold parses an n_sigs-style tag: absent means 1 (0 if the pathway
// has no keys); present, it must be a positive integer no larger than the
// number of keys.
func threshold(s Secret, key string, nkeys int) (int, error) {
	v, ok, err := s.tag(key)
	if err != nil {
		return 0, err
	}
	if !ok {
		return min(1, nkeys), nil
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("%w: %s takes one value", ErrMalformedSecret, key)
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 1 || n > nkeys {
		return 0, fmt.Errorf("%w: %s out of range", ErrMalformedSecret, key)
	}
	return n, nil
}

// parseLocktime: a locktime that is not a valid unix time leaves the lock
// permanent (NUT-11).
func (c *Conditions) parseLocktime(s Secret) error {
	v, ok, err := s.tag(TagLocktime)
	if err != nil || !ok || len(v) != 1 {
		return err
	}
	if t, err := strconv.ParseInt(v[0], 10, 64); err == nil && t > 0 {
		c.Locktime = t
	}
	return nil
}

// Expired reports whether the locktime has passed at unix time now.
func (c *Conditions) Expired(now int64) bool {
	return c.Locktime != 0 && now >= c.Locktime
}

func parsePubKeyHex(h string) (*btcec.PublicKey, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != btcec.PubKeyBytesLenCompressed {
		return nil, fmt.Errorf("payment: public key must be 33 bytes of hex")
	}
	return btcec.ParsePubKey(b)
}
