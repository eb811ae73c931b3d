package hidden

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/flynn/noise"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

var update = flag.Bool("update", false, "regenerate specs/vectors/hidden-handshake.json")

const handshakeVectorFile = "../specs/vectors/hidden-handshake.json"

// handshakeVectors is the layout of specs/vectors/hidden-handshake.json:
// one end-to-end handshake with fixed keys and the first transport
// message each way.
type handshakeVectors struct {
	Address       string `json:"service_address"`
	AuthSeed      string `json:"intro_auth_seed_hex"`
	EncPrivate    string `json:"intro_enc_private_hex"`
	EncPublic     string `json:"intro_enc_public_hex"`
	ClientEphSeed string `json:"client_ephemeral_private_hex"`
	SvcEphSeed    string `json:"service_ephemeral_private_hex"`
	Prologue      string `json:"prologue_hex"`
	Payload       string `json:"intro_payload_hex"`
	Introduce1    string `json:"introduce1_hex"`
	Rendezvous1   string `json:"rendezvous1_hex"`
	ClientFirst   string `json:"client_to_service_frame_hex"`
	ServiceFirst  string `json:"service_to_client_frame_hex"`
}

type fixed byte

func (r fixed) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func vectorKeys() (*introKeys, descriptor.HSAddress) {
	auth := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x31}, 32))
	enc, _ := noise.DH25519.GenerateKeypair(fixed(0x32))
	id := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x01}, 32))
	return &introKeys{auth: auth, enc: enc}, descriptor.HSAddress(id.Public().(ed25519.PublicKey))
}

func vectorPayload() descriptor.IntroPayload {
	k, _ := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x33}, 32)))
	id, _ := peer.IDFromPrivateKey(k)
	return descriptor.IntroPayload{Cookie: [20]byte(bytes.Repeat([]byte{0x34}, 20)),
		OnionKey: [32]byte(bytes.Repeat([]byte{0x35}, 32)), Relay: id}
}

func buildHandshakeVectors(t testing.TB) handshakeVectors {
	keys, addr := vectorKeys()
	ip := descriptor.IntroPoint{AuthKey: keys.authPub(), EncKey: [32]byte(keys.enc.Public)}
	pl := vectorPayload()
	hs, msg1, err := startHandshake(fixed(0x36), ip, addr, pl.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	acc, err := acceptHandshake(fixed(0x37), keys, addr, msg1)
	if err != nil {
		t.Fatal(err)
	}
	if acc.payload != pl {
		t.Fatal("service read another payload")
	}
	send, recv, err := hs.finish(acc.reply)
	if err != nil {
		t.Fatal(err)
	}
	c2s, _ := send.Encrypt(nil, nil, frame{typ: frameData, data: []byte("GET / HTTP/1.0\r\n\r\n")}.marshal())
	s2c, _ := acc.send.Encrypt(nil, nil, frame{typ: frameCredit, credit: creditEvery}.marshal())
	if p, err := acc.recv.Decrypt(nil, nil, c2s); err != nil || p[0] != frameData {
		t.Fatalf("service cannot read the client: %v", err)
	}
	if _, err := recv.Decrypt(nil, nil, s2c); err != nil {
		t.Fatalf("client cannot read the service: %v", err)
	}
	return handshakeVectors{
		Address: addr.String(), AuthSeed: hex.EncodeToString(keys.auth.Seed()),
		EncPrivate: hex.EncodeToString(keys.enc.Private), EncPublic: hex.EncodeToString(keys.enc.Public),
		ClientEphSeed: hex.EncodeToString(bytes.Repeat([]byte{0x36}, 32)),
		SvcEphSeed:    hex.EncodeToString(bytes.Repeat([]byte{0x37}, 32)),
		Prologue:      hex.EncodeToString(prologue(keys.authPub(), addr)),
		Payload:       hex.EncodeToString(pl.Marshal()),
		Introduce1:    hex.EncodeToString(descriptor.Introduce{AuthKey: keys.authPub(), Handshake: msg1}.Marshal()),
		Rendezvous1:   hex.EncodeToString(descriptor.Rendezvous1{Cookie: pl.Cookie, Handshake: acc.reply}.Marshal()),
		ClientFirst:   hex.EncodeToString(c2s), ServiceFirst: hex.EncodeToString(s2c),
	}
}

func TestHandshakeVectors(t *testing.T) {
	got, _ := json.MarshalIndent(buildHandshakeVectors(t), "", "  ")
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(handshakeVectorFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(handshakeVectorFile)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("vectors differ from %s (run go test -update after an intended change)", handshakeVectorFile)
	}
}

// A handshake for another address or intro key fails.
func TestHandshakeBinding(t *testing.T) {
	keys, addr := vectorKeys()
	ip := descriptor.IntroPoint{AuthKey: keys.authPub(), EncKey: [32]byte(keys.enc.Public)}
	_, msg1, err := startHandshake(fixed(0x36), ip, addr, vectorPayload().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	other := addr
	other[0] ^= 1
	if _, err := acceptHandshake(fixed(0x37), keys, other, msg1); err == nil {
		t.Fatal("accepted a handshake made for another address")
	}
	other2, _ := newIntroKeys(fixed(0x40))
	if _, err := acceptHandshake(fixed(0x37), other2, addr, msg1); err == nil {
		t.Fatal("accepted a handshake made for another intro key")
	}
}

// FuzzAcceptHandshake: a service never panics on a client's message and
// accepts only well-formed payloads.
func FuzzAcceptHandshake(f *testing.F) {
	v := buildHandshakeVectors(f)
	b, _ := hex.DecodeString(v.Introduce1)
	f.Add(b[descriptor.AuthKeyLen:])
	keys, addr := vectorKeys()
	f.Fuzz(func(t *testing.T, msg []byte) {
		acc, err := acceptHandshake(fixed(0x37), keys, addr, msg)
		if err != nil {
			return
		}
		if _, err := descriptor.ParseIntroPayload(acc.payload.Marshal()); err != nil {
			t.Fatal("accepted payload does not re-parse")
		}
	})
}

// FuzzFrame: tunnel frames decode strictly and round-trip.
func FuzzFrame(f *testing.F) {
	f.Add(frame{typ: frameData, data: []byte("x")}.marshal())
	f.Add(frame{typ: frameCredit, credit: 3}.marshal())
	f.Fuzz(func(t *testing.T, p []byte) {
		fr, err := parseFrame(p)
		if err != nil {
			return
		}
		if !bytes.Equal(fr.marshal(), p) {
			t.Fatal("frame round trip")
		}
	})
}
