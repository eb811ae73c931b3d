package dht_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
)

// A descriptor put by one client is found by another through the relays;
// an unknown index is not found, quickly.
func TestHSPutGet(t *testing.T) {
	net := dhttest.NewCluster(t, 6, dhttest.Options{})
	pub := dhttest.NewClient(t, net.Bootstrap())
	get := dhttest.NewClient(t, net.Bootstrap())
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	c := &descriptor.HSContent{Intros: []descriptor.IntroPoint{{Relay: net.Relays[0].ID()}}}
	rec, err := descriptor.SignHS(rand.Reader, k, c, descriptor.HSParams{
		Period: descriptor.PeriodAt(now, descriptor.DefaultPeriod), Replica: 2, Revision: 1,
		Published: now, Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pub.PutHS(ctx, rec); err != nil {
		t.Fatal(err)
	}
	u, _ := descriptor.DecodeHS(rec)
	want, _ := u.Verify(now)
	r, _, err := get.GetHS(ctx, want.Index())
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Decrypt(descriptor.HSAddress(k.Public().(ed25519.PublicKey)))
	if err != nil || !got.Equal(c) {
		t.Fatalf("decrypt: %v", err)
	}
	if _, _, err := get.GetHS(ctx, [32]byte{1}); !errors.Is(err, dht.ErrNotFound) {
		t.Fatalf("unknown index: %v", err)
	}
}
