package descriptor

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

var update = flag.Bool("update", false, "regenerate specs/vectors/descriptor-v1.json")

const vectorFile = "../specs/vectors/descriptor-v1.json"

// vectors is the layout of specs/vectors/descriptor-v1.json.
type vectors struct {
	Seed    string          `json:"identity_seed_hex"`
	Now     int64           `json:"now"`
	Relay   json.RawMessage `json:"relay"`
	Body    string          `json:"body_hex"`
	Sig     string          `json:"signature_hex"`
	Record  string          `json:"record_hex"`
	Invalid []invalidVector `json:"invalid"`
}

type invalidVector struct {
	Name   string `json:"name"`
	Record string `json:"record_hex"`
	Error  string `json:"error"`
}

var errorNames = map[string]error{
	"ErrTooLarge": ErrTooLarge, "ErrMalformed": ErrMalformed,
	"ErrNonCanonical": ErrNonCanonical, "ErrVersion": ErrVersion,
	"ErrPeerID": ErrPeerID, "ErrKeyType": ErrKeyType,
	"ErrSignature": ErrSignature, "ErrNotYetValid": ErrNotYetValid,
	"ErrExpired": ErrExpired, "ErrTooFarAhead": ErrTooFarAhead,
	"ErrField": ErrField,
}

func testKey(seed byte) crypto.PrivKey {
	s := bytes.Repeat([]byte{seed}, ed25519.SeedSize)
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s))
	if err != nil {
		panic(err)
	}
	return k
}

const vectorNow = 1_800_000_000

// sampleRelay is the relay of the vectors: every field set.
func sampleRelay(key crypto.PrivKey) *Relay {
	id, _ := peer.IDFromPrivateKey(key)
	family, _ := peer.IDFromPrivateKey(testKey(9))
	quic := ma.StringCast("/ip4/192.0.2.7/udp/4001/quic-v1").Bytes()
	tcp := ma.StringCast("/ip4/192.0.2.7/tcp/4001").Bytes()
	recv, _ := hex.DecodeString("02" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	return &Relay{
		Version: Version, PeerID: id, Seq: 7,
		Published: vectorNow - 60, Expires: vectorNow + 3*3600,
		Addrs: [][]byte{quic, tcp},
		OnionKeys: []OnionKey{
			{Key: [32]byte{1, 2, 3, 4}, NotAfter: vectorNow + 7*24*3600},
		},
		Roles:     RoleRelay | RoleGuard | RoleExit,
		ExitPorts: []PortRange{{80, 80}, {443, 443}, {8000, 9000}},
		Bandwidth: 10 << 20,
		Price:     Price{PerMiB: 1000, PerCircuit: 10},
		Payment: Payment{
			Mints:       []AcceptedMint{{URL: "https://mint.example", Unit: "sat", Keysets: []string{"009a1f293253e41e"}}},
			ReceiverKey: recv, PrepayBytes: 1 << 20, GraceSeconds: 30, FreeBytes: 64 << 10,
			MinCapacity: 64, MaxCapacity: 100000, MinExpiry: 3600, MaxExpiry: 86400,
		},
		Family:    []peer.ID{family},
		Software:  "obol/0.1.0",
		Protocols: []uint16{1},
	}
}

func mustSign(t testing.TB, key crypto.PrivKey, r *Relay) []byte {
	t.Helper()
	b, err := Sign(key, r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// invalidCases builds the rejected records of the vectors.
func invalidCases(t testing.TB) []invalidVector {
	key := testKey(1)
	good := mustSign(t, key, sampleRelay(key))
	mut := func(name, errName string, f func(r *Relay)) invalidVector {
		r := sampleRelay(key)
		f(r)
		return invalidVector{name, hex.EncodeToString(mustSign(t, key, r)), errName}
	}
	raw := func(name, errName string, b []byte) invalidVector {
		return invalidVector{name, hex.EncodeToString(b), errName}
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	other := testKey(2)
	forged := sampleRelay(key)
	forgedBody, _ := encMode.Marshal(toWire(forged))
	forgedSig, _ := other.Sign(signedMessage(forgedBody))
	forgedRec, _ := encMode.Marshal(envelope{Body: forgedBody, Sig: forgedSig})
	nonCanon := append([]byte{0x98, 0x02}, good[1:]...) // array length in two bytes
	return []invalidVector{
		raw("truncated", "ErrMalformed", good[:len(good)/2]),
		raw("empty", "ErrMalformed", nil),
		raw("oversized", "ErrTooLarge", make([]byte, MaxSize+1)),
		raw("non-canonical envelope", "ErrNonCanonical", nonCanon),
		raw("flipped signature bit", "ErrSignature", flipped),
		raw("signed by another key", "ErrSignature", forgedRec),
		mut("wrong version", "ErrVersion", func(r *Relay) { r.Version = 2 }),
		mut("expired", "ErrExpired", func(r *Relay) { r.Published, r.Expires = vectorNow-7200, vectorNow-1 }),
		mut("published in the future", "ErrNotYetValid", func(r *Relay) { r.Published, r.Expires = vectorNow+3600, vectorNow+7200 }),
		mut("expiry more than 6 days ahead", "ErrTooFarAhead", func(r *Relay) { r.Expires = vectorNow + int64(MaxLifetime/time.Second) + 1 }),
		mut("no addresses", "ErrField", func(r *Relay) { r.Addrs = nil }),
		mut("garbage address", "ErrField", func(r *Relay) { r.Addrs = [][]byte{{0xff, 0xff}} }),
		mut("no onion key", "ErrField", func(r *Relay) { r.OnionKeys = nil }),
		mut("zero onion key", "ErrField", func(r *Relay) { r.OnionKeys[0].Key = [32]byte{} }),
		mut("unknown role bit", "ErrField", func(r *Relay) { r.Roles |= 1 << 12 }),
		mut("exit without ports", "ErrField", func(r *Relay) { r.ExitPorts = nil }),
		mut("overlapping ports", "ErrField", func(r *Relay) { r.ExitPorts = []PortRange{{80, 443}, {100, 200}} }),
		mut("zero bandwidth", "ErrField", func(r *Relay) { r.Bandwidth = 0 }),
		mut("priced without mint", "ErrField", func(r *Relay) { r.Payment.Mints, r.Payment.ReceiverKey = nil, nil }),
		mut("receiver key not a point", "ErrField", func(r *Relay) { r.Payment.ReceiverKey = append([]byte{5}, bytes.Repeat([]byte{2}, 32)...) }),
		mut("mint URL not http", "ErrField", func(r *Relay) { r.Payment.Mints[0].URL = "ftp://x" }),
		mut("bad keyset id", "ErrField", func(r *Relay) { r.Payment.Mints[0].Keysets = []string{"zz"} }),
		mut("grace too long", "ErrField", func(r *Relay) { r.Payment.GraceSeconds = 3600 }),
		mut("family contains self", "ErrField", func(r *Relay) { r.Family = []peer.ID{r.PeerID} }),
		mut("software not printable", "ErrField", func(r *Relay) { r.Software = "obol\x00" }),
	}
}

func buildVectors(t testing.TB) vectors {
	key := testKey(1)
	r := sampleRelay(key)
	rec := mustSign(t, key, r)
	u, err := Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	rj, _ := json.Marshal(r)
	return vectors{
		Seed: hex.EncodeToString(bytes.Repeat([]byte{1}, 32)), Now: vectorNow,
		Relay: rj, Body: hex.EncodeToString(u.body), Sig: hex.EncodeToString(u.sig),
		Record: hex.EncodeToString(rec), Invalid: invalidCases(t),
	}
}

func loadVectors(t *testing.T) vectors {
	if *update {
		b, _ := json.MarshalIndent(buildVectors(t), "", "  ")
		if err := os.WriteFile(vectorFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVectorsValid(t *testing.T) {
	v := loadVectors(t)
	rec, _ := hex.DecodeString(v.Record)
	u, err := Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := u.Verify(time.Unix(v.Now, 0))
	if err != nil {
		t.Fatal(err)
	}
	var want Relay
	if err := json.Unmarshal(v.Relay, &want); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(r)
	exp, _ := json.Marshal(&want)
	if !bytes.Equal(got, exp) {
		t.Fatalf("decoded relay differs:\n got %s\nwant %s", got, exp)
	}
	// The record is what this code produces from the same key and fields.
	again, err := Sign(testKey(1), &want)
	if err != nil || !bytes.Equal(again, rec) {
		t.Fatalf("re-signing does not reproduce the vector (err %v)", err)
	}
	if hex.EncodeToString(u.body) != v.Body || hex.EncodeToString(u.sig) != v.Sig {
		t.Fatal("body or signature differ from the vector")
	}
}

func TestVectorsInvalid(t *testing.T) {
	v := loadVectors(t)
	now := time.Unix(v.Now, 0)
	if len(v.Invalid) < 20 {
		t.Fatalf("only %d invalid vectors", len(v.Invalid))
	}
	for _, c := range v.Invalid {
		t.Run(c.Name, func(t *testing.T) {
			want, ok := errorNames[c.Error]
			if !ok {
				t.Fatalf("unknown error name %q", c.Error)
			}
			rec, _ := hex.DecodeString(c.Record)
			u, err := Decode(rec)
			if err == nil {
				_, err = u.Verify(now)
			}
			if !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		})
	}
}

// TestVectorsUpToDate fails when the code would write different vectors
// than the committed ones, so a format change cannot slip in silently.
func TestVectorsUpToDate(t *testing.T) {
	b, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.MarshalIndent(buildVectors(t), "", "  ")
	if !bytes.Equal(bytes.TrimSpace(b), want) {
		t.Fatal("specs/vectors/descriptor-v1.json is stale: run go test ./descriptor -run TestVectors -update")
	}
}
