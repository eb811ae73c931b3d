package hidden

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"

	"github.com/obolnet/obol/descriptor"
)

// The end-to-end handshake is Noise_NK_25519_ChaChaPoly_BLAKE2s with the
// intro point's EncKey as the responder's static key:
//
//	-> e, es     INTRODUCE1/2 (payload: descriptor.IntroPayload)
//	<- e, ee     RENDEZVOUS1/2 (empty payload)
//
// The prologue binds the handshake to the intro point's auth key and to
// the service's identity key, so a message for one intro circuit
// is useless at another, and to the service's address.
const prologueDomain = "obol hs e2e v1\x00"

var suite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// ErrHandshake means the end-to-end handshake failed.
var ErrHandshake = errors.New("hidden: end-to-end handshake failed")

func prologue(auth [descriptor.AuthKeyLen]byte, id descriptor.HSAddress) []byte {
	b := append([]byte(prologueDomain), auth[:]...)
	return append(b, id[:]...)
}

// clientHandshake is the client's half of the handshake in progress.
type clientHandshake struct{ hs *noise.HandshakeState }

// startHandshake returns the client's first message, carrying payload.
func startHandshake(rand io.Reader, ip descriptor.IntroPoint, id descriptor.HSAddress, payload []byte) (*clientHandshake, []byte, error) {
	hs, err := noise.NewHandshakeState(noise.Config{CipherSuite: suite, Random: rand, Pattern: noise.HandshakeNK,
		Initiator: true, Prologue: prologue(ip.AuthKey, id), PeerStatic: ip.EncKey[:]})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	msg, _, _, err := hs.WriteMessage(nil, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	return &clientHandshake{hs}, msg, nil
}

// finish reads the service's answer and returns the client's ciphers:
// send (client → service) and receive.
func (c *clientHandshake) finish(msg [descriptor.HandshakeRspLen]byte) (send, recv *noise.CipherState, err error) {
	_, cs1, cs2, err := c.hs.ReadMessage(nil, msg[:])
	if err != nil || cs1 == nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	return cs1, cs2, nil
}

// introKeys are a service's keys at one intro point.
type introKeys struct {
	auth ed25519.PrivateKey
	enc  noise.DHKey
}

func newIntroKeys(rand io.Reader) (*introKeys, error) {
	_, auth, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	enc, err := noise.DH25519.GenerateKeypair(rand)
	if err != nil {
		return nil, err
	}
	return &introKeys{auth: auth, enc: enc}, nil
}

func (k *introKeys) authPub() [descriptor.AuthKeyLen]byte {
	return [descriptor.AuthKeyLen]byte(k.auth.Public().(ed25519.PublicKey))
}

// accepted is the service's result of a client's first message.
type accepted struct {
	payload    descriptor.IntroPayload
	reply      [descriptor.HandshakeRspLen]byte
	send, recv *noise.CipherState // service → client, client → service
}

// acceptHandshake answers a client's first message at the service.
func acceptHandshake(rand io.Reader, k *introKeys, id descriptor.HSAddress, msg []byte) (*accepted, error) {
	hs, err := noise.NewHandshakeState(noise.Config{CipherSuite: suite, Random: rand, Pattern: noise.HandshakeNK,
		Prologue: prologue(k.authPub(), id), StaticKeypair: k.enc})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	pl, _, _, err := hs.ReadMessage(nil, msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	p, err := descriptor.ParseIntroPayload(pl)
	if err != nil {
		return nil, err
	}
	reply, cs1, cs2, err := hs.WriteMessage(nil, nil)
	if err != nil || len(reply) != descriptor.HandshakeRspLen {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	return &accepted{payload: p, reply: [descriptor.HandshakeRspLen]byte(reply), send: cs2, recv: cs1}, nil
}
