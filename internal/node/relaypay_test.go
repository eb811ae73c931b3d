package node

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment/mint"
)

// A paid relay publishes its terms: prices, the mint with its keyset, a
// receiver key kept in the data directory, and its limits.
func TestPaidRelayDescribesTerms(t *testing.T) {
	srv := mint.StartTest(t, mint.Config{Seed: []byte("node package test mint seed")}, mint.ServerConfig{})
	m, url := srv.Mint, srv.URL
	dir := filepath.Join(t.TempDir(), "relay")
	terms := &pay.RelayPayment{Mint: url, PerMiB: 2000, PerCircuit: 500, MaxCapacity: 4096, Grace: 20 * time.Second, DirectMintConnectionUnsafe: true}
	r := openTestRelay(t, RelayConfig{DataDir: dir, Payment: terms})
	d := r.describer.describe(time.Now())
	ks, _ := m.ActiveKeyset("sat")
	if d.Price.PerMiB != 2000 || d.Price.PerCircuit != 500 {
		t.Errorf("price %+v", d.Price)
	}
	p := d.Payment
	if len(p.Mints) != 1 || p.Mints[0].URL != url || p.Mints[0].Unit != "sat" || len(p.Mints[0].Keysets) != 1 || p.Mints[0].Keysets[0] != ks.ID {
		t.Errorf("mints %+v", p.Mints)
	}
	if p.PrepayBytes != pay.DefaultPrepayBytes || p.FreeBytes != pay.DefaultFreeBytes || p.GraceSeconds != 20 || p.MaxCapacity != 4096 {
		t.Errorf("terms %+v", p)
	}
	if len(p.ReceiverKey) != 33 {
		t.Fatalf("receiver key of %d bytes", len(p.ReceiverKey))
	}
	if r.Payments() == nil {
		t.Error("a paid relay has no payment figures")
	}
	fi, err := os.Stat(filepath.Join(dir, pay.ReceiverKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("receiver key file: %v", err)
	}
	key := bytes.Clone(p.ReceiverKey)
	r.Close()
	// The same key after a restart.
	r2 := openTestRelay(t, RelayConfig{DataDir: dir, Payment: terms})
	if got := r2.describer.describe(time.Now()).Payment.ReceiverKey; !bytes.Equal(got, key) {
		t.Error("the receiver key changed across a restart")
	}
}

// A paid relay whose mint cannot be reached does not start, and says why;
// bad terms are refused before anything starts.
func TestPaidRelayRefusals(t *testing.T) {
	_, err := OpenRelay(RelayConfig{DataDir: t.TempDir(), Payment: &pay.RelayPayment{Mint: "http://127.0.0.1:1", PerMiB: 1, DirectMintConnectionUnsafe: true}})
	if err == nil || !strings.Contains(err.Error(), "cannot be reached") {
		t.Fatalf("unreachable mint: %v", err)
	}
	for _, c := range []struct {
		terms pay.RelayPayment
		want  string
	}{
		{pay.RelayPayment{PerMiB: 1}, "no mint"},
		{pay.RelayPayment{Mint: "http://m", Unit: "usd", PerMiB: 1}, "unit"},
		{pay.RelayPayment{Mint: "http://m"}, "both prices are zero"},
		{pay.RelayPayment{Mint: "http://m", PerMiB: 1, Grace: time.Millisecond}, "grace"},
		{pay.RelayPayment{Mint: "http://m", PerMiB: 1, MinLifetime: 2 * time.Hour, MaxLifetime: time.Hour}, "reversed"},
		{pay.RelayPayment{Mint: "http://m", PerMiB: 1, SettleDelay: time.Hour, SettleMaxDelay: time.Minute}, "settle delays"},
	} {
		terms := c.terms
		err := (&RelayConfig{DataDir: t.TempDir(), Payment: &terms}).Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.terms, err, c.want)
		}
	}
}
