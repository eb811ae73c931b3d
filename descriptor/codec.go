package descriptor

import (
	"bytes"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// relayDomain separates relay descriptor signatures from every other use of
// a node's identity key.
const relayDomain = "obol relay descriptor v1\x00"

// A signed record on the wire is a two-element CBOR array:
//
//	[ body: bstr (deterministic CBOR of wireRelay), sig: bstr (64 bytes) ]
//
// sig = Ed25519(identity key, relayDomain || body).
type envelope struct {
	_    struct{} `cbor:",toarray"`
	Body []byte
	Sig  []byte
}

// wireRelay is Relay with peer IDs as byte strings: peer.ID is a Go string
// of raw multihash bytes, which CBOR would otherwise encode as (invalid)
// UTF-8 text.
type wireRelay struct {
	Version   uint8       `cbor:"1,keyasint"`
	PeerID    []byte      `cbor:"2,keyasint"`
	Seq       uint64      `cbor:"3,keyasint"`
	Published int64       `cbor:"4,keyasint"`
	Expires   int64       `cbor:"5,keyasint"`
	Addrs     [][]byte    `cbor:"6,keyasint"`
	OnionKeys []OnionKey  `cbor:"7,keyasint"`
	Roles     Role        `cbor:"8,keyasint"`
	ExitPorts []PortRange `cbor:"9,keyasint,omitempty"`
	Bandwidth uint64      `cbor:"10,keyasint"`
	Price     Price       `cbor:"11,keyasint"`
	Payment   Payment     `cbor:"12,keyasint"`
	Family    [][]byte    `cbor:"13,keyasint,omitempty"`
	Software  string      `cbor:"14,keyasint,omitempty"`
	Protocols []uint16    `cbor:"15,keyasint"`
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	if encMode, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  MaxSize,
		MaxMapPairs:       32,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Unverified is a relay descriptor as decoded from the network. It cannot
// be used until Verify succeeds.
type Unverified struct {
	raw  []byte
	body []byte
	sig  []byte
	r    Relay
}

// Decode parses a signed relay descriptor without trusting it. It rejects
// oversized, malformed and non-canonical encodings; everything else is
// checked by Verify.
func Decode(b []byte) (*Unverified, error) {
	var w wireRelay
	env, err := decodeSigned(b, &w)
	if err != nil {
		return nil, err
	}
	u := &Unverified{raw: bytes.Clone(b), body: env.Body, sig: env.Sig}
	u.r = fromWire(&w)
	return u, nil
}

// decodeSigned parses a signed record — the envelope and its body into
// body — with limits, and rejects any encoding but the canonical one.
func decodeSigned(b []byte, body any) (envelope, error) {
	var env envelope
	if len(b) > MaxSize {
		return env, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	if err := decMode.Unmarshal(b, &env); err != nil {
		return env, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	if err := decMode.Unmarshal(env.Body, body); err != nil {
		return env, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	if err := canonical(b, env); err != nil {
		return env, err
	}
	return env, canonical(env.Body, body)
}

// canonical rejects an encoding that differs from the deterministic one, so
// that one descriptor has exactly one valid byte string.
func canonical(b []byte, v any) error {
	re, err := encMode.Marshal(v)
	if err != nil || !bytes.Equal(re, b) {
		return ErrNonCanonical
	}
	return nil
}

// ClaimedPeerID is the peer ID the record says it is from. It is not
// verified: use it only to look the record up, never to trust it.
func (u *Unverified) ClaimedPeerID() peer.ID { return u.r.PeerID }

// Bytes returns the encoded record.
func (u *Unverified) Bytes() []byte { return u.raw }

// Sign encodes r and signs it with the node's identity key, which must be
// the Ed25519 key behind r.PeerID. It does not check the field ranges;
// call Verify on the result (as the tests do) to check them.
func Sign(key crypto.PrivKey, r *Relay) ([]byte, error) {
	if key.Type() != crypto.Ed25519 {
		return nil, ErrKeyType
	}
	if !r.PeerID.MatchesPrivateKey(key) {
		return nil, fmt.Errorf("%w: key does not match peer ID", ErrPeerID)
	}
	body, err := encMode.Marshal(toWire(r))
	if err != nil {
		return nil, fmt.Errorf("descriptor: encode: %w", err)
	}
	sig, err := key.Sign(signedMessage(body))
	if err != nil {
		return nil, fmt.Errorf("descriptor: sign: %w", err)
	}
	out, err := encMode.Marshal(envelope{Body: body, Sig: sig})
	if err != nil {
		return nil, fmt.Errorf("descriptor: encode: %w", err)
	}
	if len(out) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(out))
	}
	return out, nil
}

func signedMessage(body []byte) []byte {
	return append([]byte(relayDomain), body...)
}

func toWire(r *Relay) *wireRelay {
	w := &wireRelay{
		Version: r.Version, PeerID: []byte(r.PeerID), Seq: r.Seq,
		Published: r.Published, Expires: r.Expires, Addrs: r.Addrs,
		OnionKeys: r.OnionKeys, Roles: r.Roles, ExitPorts: r.ExitPorts,
		Bandwidth: r.Bandwidth, Price: r.Price, Payment: r.Payment,
		Software: r.Software, Protocols: r.Protocols,
	}
	for _, f := range r.Family {
		w.Family = append(w.Family, []byte(f))
	}
	return w
}

func fromWire(w *wireRelay) Relay {
	r := Relay{
		Version: w.Version, PeerID: peer.ID(w.PeerID), Seq: w.Seq,
		Published: w.Published, Expires: w.Expires, Addrs: w.Addrs,
		OnionKeys: w.OnionKeys, Roles: w.Roles, ExitPorts: w.ExitPorts,
		Bandwidth: w.Bandwidth, Price: w.Price, Payment: w.Payment,
		Software: w.Software, Protocols: w.Protocols,
	}
	for _, f := range w.Family {
		r.Family = append(r.Family, peer.ID(f))
	}
	return r
}
