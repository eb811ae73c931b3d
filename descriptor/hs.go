package descriptor

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha3"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A hidden-service descriptor is a signed envelope (as a relay's) whose
// body is the deterministic CBOR of wireHS. The signature is by the
// period's blinded key over hsDomain || body. Inner is the encryption of
// the deterministic CBOR of wireHSInner under
//
//	k || iv = SHA3-512("obol hs descriptor key v1\x00" || A || A' || INT_8(n) || salt)[:44]
//
// with AES-256-GCM (k 32 bytes, iv 12 bytes, no additional data): a DHT
// node sees A' but not A, so only someone who knows the address reads it.
const (
	hsDomain    = "obol hs descriptor v1\x00"
	hsKeyDomain = "obol hs descriptor key v1\x00"
	// HSVersion is the descriptor format this package writes and accepts.
	HSVersion = 1
	// MaxHSLifetime bounds a descriptor's expiry ahead of now.
	MaxHSLifetime = 12 * time.Hour
	// MaxIntros bounds the intro points of one descriptor.
	MaxIntros = 8
	// HSReplicas is how many DHT keys a descriptor is stored under.
	HSReplicas = 3
	hsSaltLen  = 16
)

// Errors of hidden-service descriptors.
var (
	ErrHSWrongKey = errors.New("descriptor: hidden-service descriptor is not for this address")
	ErrHSDecrypt  = errors.New("descriptor: hidden-service descriptor does not decrypt")
)

type wireHS struct {
	Version   uint8  `cbor:"1,keyasint"`
	Blinded   []byte `cbor:"2,keyasint"`
	PeriodNum uint64 `cbor:"3,keyasint"`
	PeriodLen uint32 `cbor:"4,keyasint"`
	Replica   uint8  `cbor:"5,keyasint"`
	Revision  uint64 `cbor:"6,keyasint"`
	Published int64  `cbor:"7,keyasint"`
	Expires   int64  `cbor:"8,keyasint"`
	Salt      []byte `cbor:"9,keyasint"`
	Inner     []byte `cbor:"10,keyasint"`
}

// wireHSInner lists the intro points (2) or, with client authorization
// (hsauth.go), seals them (3, 4, 5).
type wireHSInner struct {
	Version uint8            `cbor:"1,keyasint"`
	Intros  []wireIntro      `cbor:"2,keyasint,omitempty"`
	AuthKey []byte           `cbor:"3,keyasint,omitempty"`
	Clients []wireAuthClient `cbor:"4,keyasint,omitempty"`
	Sealed  []byte           `cbor:"5,keyasint,omitempty"`
	PoW     *wirePoW         `cbor:"6,keyasint,omitempty"`
}

// wirePoW are a service's proof-of-work parameters (hspow.go).
type wirePoW struct {
	Seed   []byte `cbor:"1,keyasint"`
	Effort uint32 `cbor:"2,keyasint"`
}

type wireIntro struct {
	PeerID   []byte   `cbor:"1,keyasint"`
	OnionKey [32]byte `cbor:"2,keyasint"`
	AuthKey  [32]byte `cbor:"3,keyasint"`
	EncKey   [32]byte `cbor:"4,keyasint"`
}

// IntroPoint is one introduction point as a client needs it.
type IntroPoint struct {
	Relay    peer.ID  // the intro relay
	OnionKey [32]byte // its onion key, to extend to it
	AuthKey  [32]byte // Ed25519 key naming the service's intro circuit there
	EncKey   [32]byte // X25519 key the INTRODUCE handshake is encrypted to
}

// HSContent is what a descriptor tells someone who knows the address.
type HSContent struct {
	Intros []IntroPoint
	// Clients are the X25519 public keys of the clients the service
	// admits (at most MaxAuthClients): only they can read Intros. None
	// lets everyone who knows the address read them. Decrypt leaves it
	// empty.
	Clients [][32]byte
	// PoW, if its seed is set, asks clients for a proof of work of the
	// effort stated (hspow.go).
	PoW PoWParams
}

// HSRecord is the public part of a descriptor, what a DHT node can check.
type HSRecord struct {
	Blinded   HSAddress
	Period    Period
	Replica   uint8
	Revision  uint64
	Published int64
	Expires   int64
	salt      []byte
	inner     []byte
}

// Index is the record's DHT identifier.
func (r *HSRecord) Index() [32]byte { return HSIndex(r.Blinded, r.Replica, r.Period) }

// ExpiresAt is the record's expiry.
func (r *HSRecord) ExpiresAt() time.Time { return time.Unix(r.Expires, 0) }

// HSParams are what a service signs besides its intro points.
type HSParams struct {
	Period    Period
	Replica   uint8
	Revision  uint64
	Published time.Time
	Expires   time.Time
}

func hsKeys(id, blinded HSAddress, n uint64, salt []byte) (cipher.AEAD, []byte) {
	h := sha3.New512()
	h.Write([]byte(hsKeyDomain))
	h.Write(id[:])
	h.Write(blinded[:])
	h.Write(binary.BigEndian.AppendUint64(nil, n))
	h.Write(salt)
	d := h.Sum(nil)
	blk, _ := aes.NewCipher(d[:32])
	aead, _ := cipher.NewGCM(blk)
	return aead, d[32:44]
}

// SignHS encrypts c and signs the descriptor for one replica with the
// identity key's blinded key for p.Period. rand supplies the salt.
func SignHS(rand io.Reader, id ed25519.PrivateKey, c *HSContent, p HSParams) ([]byte, error) {
	if len(c.Intros) == 0 || len(c.Intros) > MaxIntros {
		return nil, fmt.Errorf("%w: %d intro points", ErrField, len(c.Intros))
	}
	inner := wireHSInner{Version: HSVersion}
	for _, ip := range c.Intros {
		inner.Intros = append(inner.Intros, wireIntro{[]byte(ip.Relay), ip.OnionKey, ip.AuthKey, ip.EncKey})
	}
	if c.PoW != (PoWParams{}) {
		if c.PoW.Effort > MaxPoWEffort {
			return nil, fmt.Errorf("%w: proof-of-work effort %d", ErrField, c.PoW.Effort)
		}
		inner.PoW = &wirePoW{Seed: c.PoW.Seed[:], Effort: c.PoW.Effort}
	}
	bk := BlindPrivateKey(id, p.Period)
	var addr HSAddress
	copy(addr[:], id.Public().(ed25519.PublicKey))
	if len(c.Clients) > 0 {
		if err := sealIntros(rand, &inner, addr, bk.Public, c.Clients); err != nil {
			return nil, err
		}
	}
	plain, err := encMode.Marshal(inner)
	if err != nil {
		return nil, fmt.Errorf("descriptor: encode: %w", err)
	}
	salt := make([]byte, hsSaltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, err
	}
	aead, iv := hsKeys(addr, bk.Public, p.Period.Num, salt)
	w := wireHS{
		Version: HSVersion, Blinded: bk.Public[:], PeriodNum: p.Period.Num,
		PeriodLen: uint32(p.Period.seconds()), Replica: p.Replica, Revision: p.Revision,
		Published: p.Published.Unix(), Expires: p.Expires.Unix(), Salt: salt,
		Inner: aead.Seal(nil, iv, plain, nil),
	}
	body, err := encMode.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("descriptor: encode: %w", err)
	}
	out, err := encMode.Marshal(envelope{Body: body, Sig: bk.Sign(append([]byte(hsDomain), body...))})
	if err != nil {
		return nil, err
	}
	if len(out) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(out))
	}
	return out, nil
}

// UnverifiedHS is a hidden-service descriptor as decoded from the network.
type UnverifiedHS struct {
	body, sig []byte
	w         wireHS
}

// DecodeHS parses a descriptor without trusting it; it rejects oversized,
// malformed and non-canonical encodings.
func DecodeHS(b []byte) (*UnverifiedHS, error) {
	var w wireHS
	env, err := decodeSigned(b, &w)
	if err != nil {
		return nil, err
	}
	return &UnverifiedHS{body: env.Body, sig: env.Sig, w: w}, nil
}

// Verify checks the version, field sizes, the blinded key's signature and
// the validity times at now.
func (u *UnverifiedHS) Verify(now time.Time) (*HSRecord, error) {
	w := &u.w
	switch {
	case w.Version != HSVersion:
		return nil, fmt.Errorf("%w: %d", ErrVersion, w.Version)
	case len(w.Blinded) != 32 || len(w.Salt) != hsSaltLen || len(w.Inner) < 16:
		return nil, fmt.Errorf("%w: key, salt or body size", ErrField)
	case w.Replica >= HSReplicas:
		return nil, fmt.Errorf("%w: replica %d", ErrField, w.Replica)
	case time.Duration(w.PeriodLen)*time.Second < MinPeriod || time.Duration(w.PeriodLen)*time.Second > MaxPeriod:
		return nil, fmt.Errorf("%w: period length %d", ErrField, w.PeriodLen)
	}
	if _, err := pointFromBytes(w.Blinded); err != nil || len(u.sig) != ed25519.SignatureSize ||
		!ed25519.Verify(w.Blinded, append([]byte(hsDomain), u.body...), u.sig) {
		return nil, ErrSignature
	}
	if err := checkHSTimes(w, now); err != nil {
		return nil, err
	}
	r := &HSRecord{Period: Period{Num: w.PeriodNum, Length: time.Duration(w.PeriodLen) * time.Second},
		Replica: w.Replica, Revision: w.Revision, Published: w.Published, Expires: w.Expires,
		salt: w.Salt, inner: w.Inner}
	copy(r.Blinded[:], w.Blinded)
	return r, nil
}

func checkHSTimes(w *wireHS, now time.Time) error {
	pub, exp := time.Unix(w.Published, 0), time.Unix(w.Expires, 0)
	switch {
	case pub.After(now.Add(MaxClockSkew)):
		return ErrNotYetValid
	case !exp.After(now):
		return ErrExpired
	case exp.After(now.Add(MaxHSLifetime)), exp.Sub(pub) > MaxHSLifetime, !exp.After(pub):
		return ErrTooFarAhead
	}
	return nil
}

// Decrypt opens the record with the address it was fetched for, and with
// the client's authorization keys if the service admits listed clients
// only. It fails with ErrHSWrongKey if the record is not that service's
// for its period, with ErrHSUnauthorized if no key given is listed.
func (r *HSRecord) Decrypt(addr HSAddress, keys ...*ecdh.PrivateKey) (*HSContent, error) {
	want, err := BlindPublicKey(addr, r.Period)
	if err != nil || want != r.Blinded {
		return nil, ErrHSWrongKey
	}
	aead, iv := hsKeys(addr, r.Blinded, r.Period.Num, r.salt)
	plain, err := aead.Open(nil, iv, r.inner, nil)
	if err != nil {
		return nil, ErrHSDecrypt
	}
	return decodeInner(plain, addr, r.Blinded, keys)
}

func decodeInner(plain []byte, id, blinded HSAddress, keys []*ecdh.PrivateKey) (*HSContent, error) {
	var in wireHSInner
	if err := decMode.Unmarshal(plain, &in); err != nil {
		return nil, fmt.Errorf("%w: inner: %v", ErrMalformed, err)
	}
	if err := canonical(plain, &in); err != nil {
		return nil, err
	}
	if in.Version != HSVersion {
		return nil, fmt.Errorf("%w: inner version", ErrField)
	}
	intros := in.Intros
	switch auth := in.AuthKey != nil || in.Clients != nil || in.Sealed != nil; {
	case auth && intros != nil:
		return nil, fmt.Errorf("%w: intro points both listed and sealed", ErrField)
	case auth:
		if err := checkAuthFields(&in); err != nil {
			return nil, err
		}
		var err error
		if intros, err = openIntros(&in, id, blinded, keys); err != nil {
			return nil, err
		}
	}
	if len(intros) == 0 || len(intros) > MaxIntros {
		return nil, fmt.Errorf("%w: intro count", ErrField)
	}
	c := &HSContent{}
	if in.PoW != nil {
		if len(in.PoW.Seed) != PoWSeedLen || in.PoW.Effort > MaxPoWEffort {
			return nil, fmt.Errorf("%w: proof-of-work parameters", ErrField)
		}
		c.PoW = PoWParams{Seed: [PoWSeedLen]byte(in.PoW.Seed), Effort: in.PoW.Effort}
	}
	for _, w := range intros {
		id, err := peer.IDFromBytes(w.PeerID)
		if err != nil {
			return nil, fmt.Errorf("%w: intro peer ID", ErrPeerID)
		}
		c.Intros = append(c.Intros, IntroPoint{id, w.OnionKey, w.AuthKey, w.EncKey})
	}
	return c, nil
}

// Equal reports whether two contents list the same intro points.
func (c *HSContent) Equal(o *HSContent) bool {
	if len(c.Intros) != len(o.Intros) {
		return false
	}
	for i := range c.Intros {
		a, b := c.Intros[i], o.Intros[i]
		if a.Relay != b.Relay || !bytes.Equal(a.AuthKey[:], b.AuthKey[:]) ||
			a.OnionKey != b.OnionKey || a.EncKey != b.EncKey {
			return false
		}
	}
	return c.PoW == o.PoW
}
