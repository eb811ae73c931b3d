package descriptor

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Verify checks the record at time now and returns the usable descriptor.
// The order of checks is fixed by specs/01-descriptor.md: version, key
// binding, signature, times, then field ranges.
func (u *Unverified) Verify(now time.Time) (*Relay, error) {
	r := u.r
	if r.Version != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, r.Version)
	}
	pub, err := identityKey(r.PeerID)
	if err != nil {
		return nil, err
	}
	ok, err := pub.Verify(signedMessage(u.body), u.sig)
	if err != nil || !ok {
		return nil, ErrSignature
	}
	if err := checkTimes(&r, now); err != nil {
		return nil, err
	}
	if err := checkFields(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// identityKey extracts the Ed25519 key a peer ID is bound to. Only peer IDs
// that inline their key (identity multihash) are accepted, so no record
// needs to carry the key separately.
func identityKey(id peer.ID) (crypto.PubKey, error) {
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPeerID, err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: no inline key", ErrPeerID)
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, ErrKeyType
	}
	return pub, nil
}

func checkTimes(r *Relay, now time.Time) error {
	pub, exp := r.PublishedAt(), r.ExpiresAt()
	switch {
	case pub.After(now.Add(MaxClockSkew)):
		return fmt.Errorf("%w: by %v", ErrNotYetValid, pub.Sub(now))
	case !exp.After(now):
		return ErrExpired
	case exp.Sub(now) > MaxLifetime || exp.Sub(pub) > MaxLifetime:
		return fmt.Errorf("%w: expires %v after now", ErrTooFarAhead, exp.Sub(now))
	case !exp.After(pub):
		return fieldErr("expires", "not after published")
	}
	return nil
}

func fieldErr(field, why string) error {
	return fmt.Errorf("%w: %s: %s", ErrField, field, why)
}

// checkFields checks every field's range; the first failure is returned.
func checkFields(r *Relay) error {
	for _, check := range []func(*Relay) error{
		checkAddrs, checkOnionKeys, checkRoles, checkExitPorts,
		checkBandwidth, checkPayment, checkFamily, checkSoftware,
	} {
		if err := check(r); err != nil {
			return err
		}
	}
	return nil
}

func checkAddrs(r *Relay) error {
	if len(r.Addrs) == 0 || len(r.Addrs) > MaxAddrs {
		return fieldErr("addrs", fmt.Sprintf("%d addresses, want 1..%d", len(r.Addrs), MaxAddrs))
	}
	for _, a := range r.Addrs {
		if len(a) > MaxAddrLen {
			return fieldErr("addrs", "address too long")
		}
		if _, err := ma.NewMultiaddrBytes(a); err != nil {
			return fieldErr("addrs", "not a multiaddr")
		}
	}
	return nil
}

func checkOnionKeys(r *Relay) error {
	if len(r.OnionKeys) == 0 || len(r.OnionKeys) > MaxOnionKeys {
		return fieldErr("onion_keys", fmt.Sprintf("%d keys, want 1..%d", len(r.OnionKeys), MaxOnionKeys))
	}
	for _, k := range r.OnionKeys {
		if k.Key == [OnionKeySize]byte{} {
			return fieldErr("onion_keys", "zero key")
		}
		if k.NotAfter <= r.Published {
			return fieldErr("onion_keys", "key expires before publish time")
		}
	}
	return nil
}

func checkRoles(r *Relay) error {
	if !r.Roles.Has(RoleRelay) || r.Roles&^knownRoles != 0 {
		return fieldErr("roles", "must include relay and only known roles")
	}
	if len(r.Protocols) == 0 || len(r.Protocols) > MaxProtocols {
		return fieldErr("protocols", fmt.Sprintf("%d versions, want 1..%d", len(r.Protocols), MaxProtocols))
	}
	return nil
}

// checkExitPorts requires a non-empty, sorted, non-overlapping summary on
// exits and none on other relays.
func checkExitPorts(r *Relay) error {
	exit := r.Roles.Has(RoleExit)
	if exit != (len(r.ExitPorts) > 0) {
		return fieldErr("exit_ports", "present exactly when the exit role is")
	}
	if len(r.ExitPorts) > MaxPortRanges {
		return fieldErr("exit_ports", "too many ranges")
	}
	prev := uint16(0)
	for i, pr := range r.ExitPorts {
		if pr.Lo == 0 || pr.Lo > pr.Hi || (i > 0 && pr.Lo <= prev) {
			return fieldErr("exit_ports", "ranges must be 1..65535, sorted and disjoint")
		}
		prev = pr.Hi
	}
	return nil
}

func checkBandwidth(r *Relay) error {
	if r.Bandwidth == 0 {
		return fieldErr("bandwidth", "zero")
	}
	return nil
}

func checkPayment(r *Relay) error {
	p := &r.Payment
	if len(p.Mints) > MaxMints {
		return fieldErr("payment.mints", "too many mints")
	}
	for _, m := range p.Mints {
		if err := checkMint(m); err != nil {
			return err
		}
	}
	paid := r.Price.PerMiB > 0 || r.Price.PerCircuit > 0
	if paid && len(p.Mints) == 0 {
		return fieldErr("payment.mints", "a priced relay must accept a mint")
	}
	if len(p.Mints) > 0 {
		if len(p.ReceiverKey) != ReceiverKeyLen {
			return fieldErr("payment.receiver_key", "want a 33-byte compressed key")
		}
		if _, err := btcec.ParsePubKey(p.ReceiverKey); err != nil {
			return fieldErr("payment.receiver_key", "not a secp256k1 point")
		}
	} else if len(p.ReceiverKey) != 0 {
		return fieldErr("payment.receiver_key", "present without a mint")
	}
	if time.Duration(p.GraceSeconds)*time.Second > MaxGrace {
		return fieldErr("payment.grace", "longer than the maximum")
	}
	if p.MaxCapacity < p.MinCapacity || p.MaxExpiry < p.MinExpiry {
		return fieldErr("payment.limits", "maximum below minimum")
	}
	return nil
}

func checkMint(m AcceptedMint) error {
	u, err := url.Parse(m.URL)
	if len(m.URL) > MaxURLLen || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fieldErr("payment.mints.url", "want an http(s) URL")
	}
	if m.Unit == "" || len(m.Unit) > 16 || strings.ToLower(m.Unit) != m.Unit || !printable(m.Unit) {
		return fieldErr("payment.mints.unit", "want a short lower-case unit")
	}
	if len(m.Keysets) > MaxKeysets {
		return fieldErr("payment.mints.keysets", "too many keysets")
	}
	for _, k := range m.Keysets {
		if !isHex(k) || (len(k) != 16 && len(k) != 66) {
			return fieldErr("payment.mints.keysets", "want a hex keyset ID")
		}
	}
	return nil
}

func checkFamily(r *Relay) error {
	if len(r.Family) > MaxFamily {
		return fieldErr("family", "too many members")
	}
	for _, f := range r.Family {
		if _, err := peer.IDFromBytes([]byte(f)); err != nil || f == r.PeerID {
			return fieldErr("family", "not a peer ID, or the relay itself")
		}
	}
	return nil
}

func checkSoftware(r *Relay) error {
	if len(r.Software) > MaxSoftwareLen || !printable(r.Software) {
		return fieldErr("software", "too long or not printable")
	}
	return nil
}

func printable(s string) bool {
	for _, c := range s {
		if c > unicode.MaxASCII || !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
