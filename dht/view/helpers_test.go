package view

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/descriptor"
)

// t0 is the clock of the tests that need no network.
var t0 = time.Unix(1_800_000_000, 0)

// testRelay is a relay identity that signs descriptors of itself.
type testRelay struct {
	key crypto.PrivKey
	id  peer.ID
	ip  string
}

// newTestRelay derives a relay identity from seed, listening at ip.
func newTestRelay(tb testing.TB, seed byte, ip string) *testRelay {
	tb.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s))
	if err != nil {
		tb.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return &testRelay{key: k, id: id, ip: ip}
}

// body is a valid descriptor of r with sequence seq published at pub,
// living for life.
func (r *testRelay) body(seq uint64, pub time.Time, life time.Duration) *descriptor.Relay {
	a := ma.StringCast("/ip4/" + r.ip + "/udp/4001/quic-v1")
	var onion [32]byte
	onion[0] = 7
	return &descriptor.Relay{
		Version: descriptor.Version, PeerID: r.id, Seq: seq,
		Published: pub.Unix(), Expires: pub.Add(life).Unix(),
		Addrs:     [][]byte{a.Bytes()},
		OnionKeys: []descriptor.OnionKey{{Key: onion, NotAfter: t0.Add(7 * 24 * time.Hour).Unix()}},
		Roles:     descriptor.RoleRelay | descriptor.RoleGuard, Bandwidth: 1 << 20,
		Protocols: []uint16{1}, Software: "obol-test",
	}
}

// sign signs body with r's key.
func (r *testRelay) sign(tb testing.TB, body *descriptor.Relay) []byte {
	tb.Helper()
	rec, err := descriptor.Sign(r.key, body)
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}

// rec is a signed descriptor of r with sequence seq, published at pub,
// living an hour.
func (r *testRelay) rec(tb testing.TB, seq uint64, pub time.Time) []byte {
	return r.sign(tb, r.body(seq, pub, time.Hour))
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }
