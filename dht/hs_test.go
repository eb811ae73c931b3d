package dht

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

func hsRecord(t testing.TB, k ed25519.PrivateKey, replica uint8, rev uint64, published time.Time, life time.Duration) ([]byte, *descriptor.HSRecord) {
	t.Helper()
	c := &descriptor.HSContent{Intros: []descriptor.IntroPoint{{Relay: r1Relay(t)}}}
	rec, err := descriptor.SignHS(rand.Reader, k, c, descriptor.HSParams{
		Period: descriptor.PeriodAt(testNow, descriptor.DefaultPeriod), Replica: replica,
		Revision: rev, Published: published, Expires: published.Add(life)})
	if err != nil {
		t.Fatal(err)
	}
	u, err := descriptor.DecodeHS(rec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := u.Verify(testNow)
	if err != nil {
		t.Fatal(err)
	}
	return rec, r
}

func TestHSValidatorRejects(t *testing.T) {
	v := Validator(func() time.Time { return testNow })
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	good, r := hsRecord(t, k, 0, 1, testNow, time.Hour)
	_, r1 := hsRecord(t, k, 1, 1, testNow, time.Hour)
	forged := bytes.Clone(good)
	forged[len(forged)-3] ^= 0x40
	expired, err := descriptor.SignHS(rand.Reader, k, &descriptor.HSContent{Intros: []descriptor.IntroPoint{{Relay: r1Relay(t)}}},
		descriptor.HSParams{Period: r.Period, Revision: 2, Published: testNow.Add(-2 * time.Hour), Expires: testNow.Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  string
		rec  []byte
		want error
	}{
		{"forged signature", HSKey(r.Index()), forged, descriptor.ErrSignature},
		{"stored under another replica's key", HSKey(r1.Index()), good, ErrKeyMismatch},
		{"oversized", HSKey(r.Index()), make([]byte, descriptor.MaxSize+1), descriptor.ErrTooLarge},
		{"garbage", HSKey(r.Index()), []byte("not a record"), descriptor.ErrMalformed},
		{"short key", "/" + HSNamespace + "/abc", good, ErrBadKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := v.Validate(c.key, c.rec); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if err := v.Validate(HSKey(r.Index()), expired); !errors.Is(err, descriptor.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	if err := v.Validate(HSKey(r.Index()), good); err != nil {
		t.Fatalf("good record rejected: %v", err)
	}
}

func TestHSValidatorSelectsHighestRevision(t *testing.T) {
	v := Validator(func() time.Time { return testNow })
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	r3, r := hsRecord(t, k, 0, 3, testNow, time.Hour)
	r9, _ := hsRecord(t, k, 0, 9, testNow, time.Hour)
	alien, _ := hsRecord(t, other, 0, 50, testNow, time.Hour)
	i, err := v.Select(HSKey(r.Index()), [][]byte{r3, alien, r9, []byte("junk")})
	if err != nil || i != 2 {
		t.Fatalf("selected %d (%v), want 2", i, err)
	}
}

func r1Relay(t testing.TB) peer.ID {
	_, id := newKey(t)
	return id
}
