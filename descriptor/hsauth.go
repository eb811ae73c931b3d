package descriptor

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/sha3"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Client authorization (after rend-spec-v3 §2.5.1.2). A service that
// names its clients' X25519 keys does not list its intro points in the
// inner plaintext; it seals them under a random 32-byte descriptor cookie
// and gives each client the cookie encrypted to it:
//
//	E = e·G           service ephemeral X25519 key, fresh per record
//	s = X25519(e, C)  = X25519(c, E) for a client key pair (c, C)
//	id || ck = SHA3-512("obol hs client auth v1\x00" || A || A' || E || s)[0:40]
//	entry  = {id (8), AES-256-GCM(ck, nonce 0¹², cookie) (48)}
//	sealed = AES-256-GCM(SHA3-256("obol hs intro points v1\x00" || A' || cookie),
//	                     nonce 0¹², CBOR([intro, ...]))
//
// Every key encrypts one message only (E and the cookie are fresh per
// record), so the zero nonce is safe. The entries are padded with random
// ones to a multiple of authPad and sorted by id, so that the record
// shows neither the number nor the order of the clients. Someone who
// knows the address but holds no listed key learns nothing of the intro
// points.
const (
	hsAuthDomain  = "obol hs client auth v1\x00"
	hsIntroDomain = "obol hs intro points v1\x00"
	// MaxAuthClients bounds the authorized clients of one service.
	MaxAuthClients = 32
	authPad        = 16
	authIDLen      = 8
	cookieLen      = 32
	sealedCookie   = cookieLen + 16
)

// ErrHSUnauthorized: the service admits listed clients only and none of
// the keys given is listed. The client needs the service's authorization.
var ErrHSUnauthorized = errors.New("descriptor: hidden service admits authorized clients only")

type wireAuthClient struct {
	ID     []byte `cbor:"1,keyasint"`
	Cookie []byte `cbor:"2,keyasint"`
}

func zeroNonceAEAD(key []byte) cipher.AEAD {
	blk, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(blk)
	return aead
}

var zeroNonce = make([]byte, 12)

// authKeys derives a client's id and cookie key.
func authKeys(id, blinded HSAddress, eph, secret []byte) (cid, ck []byte) {
	h := sha3.New512()
	h.Write([]byte(hsAuthDomain))
	h.Write(id[:])
	h.Write(blinded[:])
	h.Write(eph)
	h.Write(secret)
	d := h.Sum(nil)
	return d[:authIDLen], d[authIDLen : authIDLen+32]
}

func introKey(blinded HSAddress, cookie []byte) []byte {
	h := sha3.New256()
	h.Write([]byte(hsIntroDomain))
	h.Write(blinded[:])
	h.Write(cookie)
	return h.Sum(nil)
}

// sealIntros fills in the client-authorization fields of in for clients.
func sealIntros(rand io.Reader, in *wireHSInner, id, blinded HSAddress, clients [][32]byte) error {
	if len(clients) > MaxAuthClients {
		return fmt.Errorf("%w: %d authorized clients", ErrField, len(clients))
	}
	var seed, cookie [32]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(rand, cookie[:]); err != nil {
		return err
	}
	eph, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		return err
	}
	plain, err := encMode.Marshal(in.Intros)
	if err != nil {
		return fmt.Errorf("descriptor: encode: %w", err)
	}
	E := eph.PublicKey().Bytes()
	in.Intros, in.AuthKey = nil, E
	in.Sealed = zeroNonceAEAD(introKey(blinded, cookie[:])).Seal(nil, zeroNonce, plain, nil)
	for _, c := range clients {
		pub, err := ecdh.X25519().NewPublicKey(c[:])
		if err != nil {
			return fmt.Errorf("%w: client key", ErrField)
		}
		s, err := eph.ECDH(pub)
		if err != nil {
			return fmt.Errorf("%w: client key", ErrField)
		}
		cid, ck := authKeys(id, blinded, E, s)
		in.Clients = append(in.Clients, wireAuthClient{ID: cid, Cookie: zeroNonceAEAD(ck).Seal(nil, zeroNonce, cookie[:], nil)})
	}
	for len(in.Clients) == 0 || len(in.Clients)%authPad != 0 {
		fake := make([]byte, authIDLen+sealedCookie)
		if _, err := io.ReadFull(rand, fake); err != nil {
			return err
		}
		in.Clients = append(in.Clients, wireAuthClient{ID: fake[:authIDLen], Cookie: fake[authIDLen:]})
	}
	slices.SortFunc(in.Clients, func(a, b wireAuthClient) int { return bytes.Compare(a.ID, b.ID) })
	return nil
}

// checkAuthFields checks the sizes of an inner plaintext with client
// authorization.
func checkAuthFields(in *wireHSInner) error {
	if len(in.AuthKey) != 32 || len(in.Sealed) < 16 || len(in.Clients) == 0 ||
		len(in.Clients)%authPad != 0 || len(in.Clients) > MaxAuthClients+authPad {
		return fmt.Errorf("%w: client authorization fields", ErrField)
	}
	for _, c := range in.Clients {
		if len(c.ID) != authIDLen || len(c.Cookie) != sealedCookie {
			return fmt.Errorf("%w: client entry", ErrField)
		}
	}
	return nil
}

// openIntros finds the entry of one of keys and opens the sealed intro
// points with it.
func openIntros(in *wireHSInner, id, blinded HSAddress, keys []*ecdh.PrivateKey) ([]wireIntro, error) {
	E, err := ecdh.X25519().NewPublicKey(in.AuthKey)
	if err != nil {
		return nil, fmt.Errorf("%w: service auth key", ErrField)
	}
	for _, k := range keys {
		if k == nil || k.Curve() != ecdh.X25519() {
			continue
		}
		s, err := k.ECDH(E)
		if err != nil {
			continue
		}
		cid, ck := authKeys(id, blinded, in.AuthKey, s)
		for _, c := range in.Clients {
			if !bytes.Equal(c.ID, cid) {
				continue
			}
			cookie, err := zeroNonceAEAD(ck).Open(nil, zeroNonce, c.Cookie, nil)
			if err != nil {
				continue
			}
			plain, err := zeroNonceAEAD(introKey(blinded, cookie)).Open(nil, zeroNonce, in.Sealed, nil)
			if err != nil {
				return nil, ErrHSDecrypt
			}
			var intros []wireIntro
			if err := decMode.Unmarshal(plain, &intros); err != nil {
				return nil, fmt.Errorf("%w: sealed intro points: %v", ErrMalformed, err)
			}
			if err := canonical(plain, &intros); err != nil {
				return nil, err
			}
			return intros, nil
		}
	}
	return nil, ErrHSUnauthorized
}
