package descriptor

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha3"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// A hidden service's address names its identity key:
//
//	address = base32(pubkey[32] || checksum[2] || version[1]) + ".obol"
//	checksum = SHA3-256(".obol checksum" || pubkey || version)[:2]
//
// base32 is RFC 4648 without padding, lower case: 56 characters.
const (
	HSAddrVersion = 1
	HSSuffix      = ".obol"
	hsAddrLen     = 56
	hsChecksum    = ".obol checksum"
)

// Errors of hidden-service addresses.
var (
	ErrHSAddress  = errors.New("descriptor: not a .obol address")
	ErrHSChecksum = errors.New("descriptor: .obol address checksum mismatch (mistyped address?)")
	ErrHSVersion  = errors.New("descriptor: unsupported .obol address version")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// HSAddress is a hidden service's identity public key.
type HSAddress [ed25519.PublicKeySize]byte

func hsAddrChecksum(pub []byte, version byte) []byte {
	h := sha3.New256()
	h.Write([]byte(hsChecksum))
	h.Write(pub)
	h.Write([]byte{version})
	return h.Sum(nil)[:2]
}

// String is the address with its ".obol" suffix.
func (a HSAddress) String() string {
	b := append(bytes.Clone(a[:]), hsAddrChecksum(a[:], HSAddrVersion)...)
	b = append(b, HSAddrVersion)
	return strings.ToLower(b32.EncodeToString(b)) + HSSuffix
}

// PublicKey is the identity key as an ed25519 key.
func (a HSAddress) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(bytes.Clone(a[:])) }

// IsHSHost reports whether host names a hidden service: it ends in ".obol"
// in any case, with or without trailing dots (a fully qualified name), with
// any subdomain, or is "obol" itself. Such a name must never reach an exit,
// whose resolver would send it to public DNS.
func IsHSHost(host string) bool {
	h := strings.ToLower(strings.TrimRight(host, "."))
	return h == HSSuffix[1:] || strings.HasSuffix(h, HSSuffix)
}

// ParseHSAddress parses "<56 chars>.obol" (the suffix may be omitted;
// subdomains before the address are ignored, as Tor ignores them).
func ParseHSAddress(s string) (HSAddress, error) {
	var a HSAddress
	s = strings.TrimSuffix(strings.ToLower(strings.TrimRight(s, ".")), HSSuffix)
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) != hsAddrLen {
		return a, fmt.Errorf("%w: %d characters, want %d", ErrHSAddress, len(s), hsAddrLen)
	}
	b, err := b32.DecodeString(strings.ToUpper(s))
	if err != nil || len(b) != 35 {
		return a, fmt.Errorf("%w: bad base32", ErrHSAddress)
	}
	if b[34] != HSAddrVersion {
		return a, fmt.Errorf("%w: %d", ErrHSVersion, b[34])
	}
	if !bytes.Equal(b[32:34], hsAddrChecksum(b[:32], b[34])) {
		return a, ErrHSChecksum
	}
	copy(a[:], b[:32])
	if _, err := pointFromBytes(a[:]); err != nil {
		return a, fmt.Errorf("%w: key is not a curve point", ErrHSAddress)
	}
	return a, nil
}
