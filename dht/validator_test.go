package dht

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/descriptor"
)

var testNow = time.Unix(1_800_000_000, 0)

func newKey(t testing.TB) (crypto.PrivKey, peer.ID) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

// relayRecord signs a minimal valid descriptor, altered by mod.
func relayRecord(t testing.TB, key crypto.PrivKey, seq uint64, mod func(*descriptor.Relay)) []byte {
	t.Helper()
	id, _ := peer.IDFromPrivateKey(key)
	r := &descriptor.Relay{
		Version: descriptor.Version, PeerID: id, Seq: seq,
		Published: testNow.Unix() - 10, Expires: testNow.Add(time.Hour).Unix(),
		Addrs:     [][]byte{ma.StringCast("/ip4/127.0.0.1/udp/1/quic-v1").Bytes()},
		OnionKeys: []descriptor.OnionKey{{Key: [32]byte{9}, NotAfter: testNow.Add(48 * time.Hour).Unix()}},
		Roles:     descriptor.RoleRelay, Bandwidth: 1, Protocols: []uint16{1},
	}
	if mod != nil {
		mod(r)
	}
	b, err := descriptor.Sign(key, r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRelayValidatorRejects(t *testing.T) {
	v := Validator(func() time.Time { return testNow })
	key, id := newKey(t)
	otherKey, otherID := newKey(t)
	good := relayRecord(t, key, 1, nil)
	forged := bytes.Clone(good)
	forged[len(forged)-3] ^= 0x40
	cases := []struct {
		name string
		key  string
		rec  []byte
		want error
	}{
		{"forged signature", RelayKey(id), forged, descriptor.ErrSignature},
		{"record of another relay", RelayKey(otherID), good, ErrKeyMismatch},
		{"expired", RelayKey(id), relayRecord(t, key, 1, func(r *descriptor.Relay) {
			r.Published, r.Expires = testNow.Unix()-7200, testNow.Unix()-1
		}), descriptor.ErrExpired},
		{"too far in the future", RelayKey(id), relayRecord(t, key, 1, func(r *descriptor.Relay) {
			r.Expires = testNow.Add(descriptor.MaxLifetime + time.Hour).Unix()
		}), descriptor.ErrTooFarAhead},
		{"oversized", RelayKey(id), make([]byte, descriptor.MaxSize+1), descriptor.ErrTooLarge},
		{"garbage", RelayKey(id), []byte("not a record"), descriptor.ErrMalformed},
		{"bad key", "/" + RelayNamespace + "/xx", good, ErrBadKey},
		{"relay record under a bad hidden-service key", "/" + HSNamespace + "/abc", good, ErrBadKey},
		{"unknown namespace", "/ipns/" + string(id), good, nil},
	}
	_ = otherKey
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := v.Validate(c.key, c.rec)
			if err == nil {
				t.Fatal("accepted")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if err := v.Validate(RelayKey(id), good); err != nil {
		t.Fatalf("good record rejected: %v", err)
	}
}

func TestRelayValidatorSelectsHighestSeq(t *testing.T) {
	v := Validator(func() time.Time { return testNow })
	key, id := newKey(t)
	otherKey, _ := newKey(t)
	recs := [][]byte{
		relayRecord(t, key, 3, nil),
		relayRecord(t, key, 9, func(r *descriptor.Relay) { r.Expires = testNow.Unix() - 1; r.Published = r.Expires - 10 }), // expired
		relayRecord(t, otherKey, 50, nil), // another relay's
		relayRecord(t, key, 5, nil),
		relayRecord(t, key, 4, nil),
	}
	i, err := v.Select(RelayKey(id), recs)
	if err != nil || i != 3 {
		t.Fatalf("selected %d (%v), want 3", i, err)
	}
	if _, err := v.Select(RelayKey(id), recs[1:3]); err == nil {
		t.Fatal("selected among invalid records only")
	}
}
