package descriptor

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Relay commands of hidden services (the 0x50–0x5F range of the circuit
// layer; specs/07-hidden.md). Every one is circuit level (stream 0).
const (
	CmdEstablishIntro        = 0x50 // service → intro point
	CmdIntroEstablished      = 0x51 // intro point → service
	CmdIntroduce1            = 0x52 // client → intro point
	CmdIntroduce2            = 0x53 // intro point → service
	CmdIntroduceAck          = 0x54 // intro point → client
	CmdEstablishRendezvous   = 0x55 // client → rendezvous point
	CmdRendezvousEstablished = 0x56 // rendezvous point → client
	CmdRendezvous1           = 0x57 // service → rendezvous point
	CmdRendezvous2           = 0x58 // rendezvous point → client
	CmdHSFetch               = 0x59 // client → any relay: fetch a descriptor from the DHT
	CmdHSFetched             = 0x5A // relay → client: one chunk of the answer
	CmdHSData                = 0x5B // end to end, spliced at the rendezvous point
	CmdHSStore               = 0x5C // service → any relay: store a descriptor in the DHT (HSFetched layout, status 0)
	CmdHSStored              = 0x5D // relay → service: one status byte (StoreOK, ...)
)

// HS_STORED statuses.
const (
	StoreOK          = 0
	StoreRejected    = 1 // the record did not validate or the DHT refused it
	StoreUnavailable = 2 // this relay does not store descriptors
)

// Sizes of the fixed parts of the messages.
const (
	CookieLen       = 20
	AuthKeyLen      = ed25519.PublicKeySize
	establishLen    = AuthKeyLen + 8 + ed25519.SignatureSize // 104
	HandshakeRspLen = 32 + 16                                // Noise NK message 2 with an empty payload
	// MaxHandshakeLen bounds the client's Noise message in INTRODUCE1.
	MaxHandshakeLen = 512
	minHandshakeLen = 32 + 16
	maxPeerIDLen    = 64
	// MaxHSFetchChunk is the descriptor bytes one HS_FETCHED cell carries.
	MaxHSFetchChunk = 1024
)

// ErrHSMessage rejects a malformed hidden-service message.
var ErrHSMessage = errors.New("descriptor: malformed hidden-service message")

const establishDomain = "obol hs establish intro v1\x00"

// EstablishIntro registers a service's intro circuit under an auth key.
//
//	+-------------------+---------------+-------------------------+
//	| auth key (32)     | time (8, BE)  | Ed25519 signature (64)  |
//	+-------------------+---------------+-------------------------+
//
// The signature is by the auth key over establishDomain || auth key || time.
type EstablishIntro struct {
	AuthKey [AuthKeyLen]byte
	Time    int64
	Sig     [ed25519.SignatureSize]byte
}

// NewEstablishIntro signs an ESTABLISH_INTRO with the per-intro auth key.
func NewEstablishIntro(auth ed25519.PrivateKey, now time.Time) EstablishIntro {
	var m EstablishIntro
	copy(m.AuthKey[:], auth.Public().(ed25519.PublicKey))
	m.Time = now.Unix()
	copy(m.Sig[:], ed25519.Sign(auth, m.signed()))
	return m
}

func (m EstablishIntro) signed() []byte {
	b := append([]byte(establishDomain), m.AuthKey[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(m.Time))
}

// Marshal encodes m.
func (m EstablishIntro) Marshal() []byte {
	b := append(m.AuthKey[:0:0], m.AuthKey[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Time))
	return append(b, m.Sig[:]...)
}

// ParseEstablishIntro decodes and checks an ESTABLISH_INTRO at now.
func ParseEstablishIntro(b []byte, now time.Time) (EstablishIntro, error) {
	var m EstablishIntro
	if len(b) != establishLen {
		return m, fmt.Errorf("%w: ESTABLISH_INTRO of %d bytes", ErrHSMessage, len(b))
	}
	copy(m.AuthKey[:], b)
	m.Time = int64(binary.BigEndian.Uint64(b[AuthKeyLen:]))
	copy(m.Sig[:], b[AuthKeyLen+8:])
	if _, err := pointFromBytes(m.AuthKey[:]); err != nil || !ed25519.Verify(m.AuthKey[:], m.signed(), m.Sig[:]) {
		return m, ErrSignature
	}
	if d := now.Sub(time.Unix(m.Time, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return m, fmt.Errorf("%w: ESTABLISH_INTRO time", ErrExpired)
	}
	return m, nil
}

// Introduce is the body of INTRODUCE1 and of INTRODUCE2 (the intro point
// passes it on unchanged):
//
//	+---------------+------------------------------------------------+
//	| auth key (32) | client's Noise NK message 1 (48–512 bytes)      |
//	+---------------+------------------------------------------------+
//
// The Noise message is encrypted to the intro point's EncKey; its payload
// is an IntroPayload.
type Introduce struct {
	AuthKey   [AuthKeyLen]byte
	Handshake []byte
}

// Marshal encodes m.
func (m Introduce) Marshal() []byte { return append(m.AuthKey[:], m.Handshake...) }

// ParseIntroduce decodes an INTRODUCE1 or INTRODUCE2 body. Handshake
// aliases b.
func ParseIntroduce(b []byte) (Introduce, error) {
	var m Introduce
	n := len(b) - AuthKeyLen
	if n < minHandshakeLen || n > MaxHandshakeLen {
		return m, fmt.Errorf("%w: INTRODUCE of %d bytes", ErrHSMessage, len(b))
	}
	copy(m.AuthKey[:], b)
	m.Handshake = b[AuthKeyLen:]
	return m, nil
}

// IntroPayload is what the client tells the service inside its handshake:
//
//	+-------------+--------------------+-------------+-----------------+
//	| cookie (20) | RP onion key (32)  | id len (1)  | RP peer ID      |
//	+-------------+--------------------+-------------+-----------------+
//	| PoW effort (4, big endian) | PoW nonce (16) |   (hspow.go)
//	+----------------------------+----------------+
//
// The proof of work is always present (effort 0: none), so that every
// payload naming one rendezvous point has one size.
type IntroPayload struct {
	Cookie   [CookieLen]byte
	OnionKey [32]byte
	Relay    peer.ID
	PoW      PoW
}

const powExtLen = 4 + PoWNonceLen

// Marshal encodes m.
func (m IntroPayload) Marshal() []byte {
	b := append(m.Cookie[:], m.OnionKey[:]...)
	b = append(b, byte(len(m.Relay)))
	b = append(b, m.Relay...)
	b = binary.BigEndian.AppendUint32(b, m.PoW.Effort)
	return append(b, m.PoW.Nonce[:]...)
}

// ParseIntroPayload decodes an IntroPayload.
func ParseIntroPayload(b []byte) (IntroPayload, error) {
	var m IntroPayload
	if len(b) < CookieLen+33 {
		return m, fmt.Errorf("%w: intro payload", ErrHSMessage)
	}
	idLen := int(b[CookieLen+32])
	if idLen > maxPeerIDLen || len(b)-CookieLen-33 != idLen+powExtLen {
		return m, fmt.Errorf("%w: intro payload", ErrHSMessage)
	}
	ext := b[CookieLen+33+idLen:]
	m.PoW.Effort = binary.BigEndian.Uint32(ext)
	copy(m.PoW.Nonce[:], ext[4:])
	b = b[:len(b)-powExtLen]
	copy(m.Cookie[:], b)
	copy(m.OnionKey[:], b[CookieLen:])
	id, err := peer.IDFromBytes(b[CookieLen+33:])
	if err != nil {
		return m, fmt.Errorf("%w: rendezvous peer ID", ErrHSMessage)
	}
	m.Relay = id
	return m, nil
}

// IntroduceAck statuses.
const (
	IntroAckOK          = 0
	IntroAckUnknown     = 1 // no service circuit with that auth key
	IntroAckRateLimited = 2
	IntroAckReplay      = 3
	IntroAckMalformed   = 4
)

// ParseCookie decodes ESTABLISH_RENDEZVOUS.
func ParseCookie(b []byte) ([CookieLen]byte, error) {
	if len(b) != CookieLen {
		return [CookieLen]byte{}, fmt.Errorf("%w: cookie of %d bytes", ErrHSMessage, len(b))
	}
	return [CookieLen]byte(b), nil
}

// Rendezvous1 is the service's answer at the rendezvous point:
//
//	+-------------+-------------------------------------+
//	| cookie (20) | Noise NK message 2 (48 bytes)       |
//	+-------------+-------------------------------------+
//
// RENDEZVOUS2 carries the Noise message alone.
type Rendezvous1 struct {
	Cookie    [CookieLen]byte
	Handshake [HandshakeRspLen]byte
}

// Marshal encodes m.
func (m Rendezvous1) Marshal() []byte { return append(m.Cookie[:], m.Handshake[:]...) }

// ParseRendezvous1 decodes RENDEZVOUS1.
func ParseRendezvous1(b []byte) (Rendezvous1, error) {
	var m Rendezvous1
	if len(b) != CookieLen+HandshakeRspLen {
		return m, fmt.Errorf("%w: RENDEZVOUS1 of %d bytes", ErrHSMessage, len(b))
	}
	copy(m.Cookie[:], b)
	copy(m.Handshake[:], b[CookieLen:])
	return m, nil
}

// ParseRendezvous2 decodes RENDEZVOUS2.
func ParseRendezvous2(b []byte) ([HandshakeRspLen]byte, error) {
	if len(b) != HandshakeRspLen {
		return [HandshakeRspLen]byte{}, fmt.Errorf("%w: RENDEZVOUS2 of %d bytes", ErrHSMessage, len(b))
	}
	return [HandshakeRspLen]byte(b), nil
}

// ParseHSFetch decodes HS_FETCH: the 32-byte index of a descriptor.
func ParseHSFetch(b []byte) ([32]byte, error) {
	if len(b) != 32 {
		return [32]byte{}, fmt.Errorf("%w: HS_FETCH of %d bytes", ErrHSMessage, len(b))
	}
	return [32]byte(b), nil
}

// HSFetched is one chunk of the answer to HS_FETCH:
//
//	+------------+-----------------+-----------------------------+
//	| status (1) | total len (2)   | chunk (≤ 1024 bytes)        |
//	+------------+-----------------+-----------------------------+
//
// Chunks follow in order until total bytes have come; a status other than
// FetchOK ends the answer with an empty chunk.
type HSFetched struct {
	Status uint8
	Total  uint16
	Chunk  []byte
}

// HS_FETCHED statuses.
const (
	FetchOK          = 0
	FetchNotFound    = 1
	FetchUnavailable = 2 // this relay does not fetch descriptors
)

// Marshal encodes m.
func (m HSFetched) Marshal() []byte {
	b := []byte{m.Status}
	b = binary.BigEndian.AppendUint16(b, m.Total)
	return append(b, m.Chunk...)
}

// ParseHSFetched decodes HS_FETCHED; Chunk aliases b.
func ParseHSFetched(b []byte) (HSFetched, error) {
	if len(b) < 3 || len(b)-3 > MaxHSFetchChunk {
		return HSFetched{}, fmt.Errorf("%w: HS_FETCHED of %d bytes", ErrHSMessage, len(b))
	}
	m := HSFetched{Status: b[0], Total: binary.BigEndian.Uint16(b[1:]), Chunk: b[3:]}
	if int(m.Total) > MaxSize || len(m.Chunk) > int(m.Total) || (m.Status != FetchOK && (m.Total != 0 || len(m.Chunk) != 0)) {
		return HSFetched{}, fmt.Errorf("%w: HS_FETCHED fields", ErrHSMessage)
	}
	return m, nil
}
