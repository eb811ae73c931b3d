package pay

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obolnet/obol/payment/mint"
	"github.com/obolnet/obol/payment/wallet"
)

// A wallet directory remembers its mint, keeps its seed across opens and
// refuses a second mint and a second process.
func testMint(t *testing.T) (*mint.Mint, string) {
	m, err := mint.Open(mint.Config{Seed: []byte("pay package test mint seed")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(func() { srv.Close(); m.Close() })
	return m, srv.URL
}

func TestOpenWallet(t *testing.T) {
	_, url := testMint(t)
	dir := filepath.Join(t.TempDir(), "wallet")
	if _, err := OpenWallet(WalletConfig{Dir: dir}); err == nil || !strings.Contains(err.Error(), "no mint yet") {
		t.Fatalf("first open without a mint: %v", err)
	}
	if _, err := OpenWallet(WalletConfig{Dir: dir, Mint: "ftp://x"}); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Fatalf("bad mint URL: %v", err)
	}
	w, err := OpenWallet(WalletConfig{Dir: dir, Mint: url + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.TopUp(context.Background(), 21); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWallet(WalletConfig{Dir: dir}); !errors.Is(err, wallet.ErrInUse) {
		t.Fatalf("a second open of a wallet in use: %v", err)
	}
	w.Close()
	if _, err := OpenWallet(WalletConfig{Dir: dir, Mint: "http://other.example"}); err == nil || !strings.Contains(err.Error(), "holds ecash of") {
		t.Fatalf("another mint: %v", err)
	}
	w, err = OpenWallet(WalletConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.MintURL() != url || w.Balance() != 21 {
		t.Fatalf("reopened wallet: mint %s, balance %d", w.MintURL(), w.Balance())
	}
	fi, _ := os.Stat(filepath.Join(dir, WalletSeedFile))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file mode %v", fi.Mode())
	}
}
