package descriptor

import "errors"

// Every rejection has its own error, so that a caller (and a test) can tell
// them apart. Verify and Decode wrap them with the offending detail.
var (
	ErrTooLarge     = errors.New("descriptor: record too large")
	ErrMalformed    = errors.New("descriptor: malformed encoding")
	ErrNonCanonical = errors.New("descriptor: encoding is not canonical")
	ErrVersion      = errors.New("descriptor: unsupported version")
	ErrPeerID       = errors.New("descriptor: bad peer ID")
	ErrKeyType      = errors.New("descriptor: identity key is not Ed25519")
	ErrSignature    = errors.New("descriptor: bad signature")
	ErrNotYetValid  = errors.New("descriptor: published in the future")
	ErrExpired      = errors.New("descriptor: expired")
	ErrTooFarAhead  = errors.New("descriptor: expiry too far ahead")
	ErrField        = errors.New("descriptor: field out of range")
)
