package pay

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obolnet/obol/payment/mint"
	"github.com/obolnet/obol/payment/wallet"
)

// testMint is the package's test mint.
var testMint = mint.Config{Seed: []byte("pay package test mint seed")}

// A wallet directory remembers its mint, keeps its seed across opens and
// refuses a second mint and a second process.
func TestOpenWallet(t *testing.T) {
	url := mint.StartTest(t, testMint, mint.ServerConfig{}).URL
	dir := filepath.Join(t.TempDir(), "wallet")
	if _, err := OpenWallet(WalletConfig{DirectMintConnectionUnsafe: true, Dir: dir}); err == nil || !strings.Contains(err.Error(), "no mint yet") {
		t.Fatalf("first open without a mint: %v", err)
	}
	if _, err := OpenWallet(WalletConfig{DirectMintConnectionUnsafe: true, Dir: dir, Mint: "ftp://x"}); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Fatalf("bad mint URL: %v", err)
	}
	w, err := OpenWallet(WalletConfig{DirectMintConnectionUnsafe: true, Dir: dir, Mint: url + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.TopUp(context.Background(), 21); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWallet(WalletConfig{DirectMintConnectionUnsafe: true, Dir: dir}); !errors.Is(err, wallet.ErrInUse) {
		t.Fatalf("a second open of a wallet in use: %v", err)
	}
	w.Close()
	if _, err := OpenWallet(WalletConfig{DirectMintConnectionUnsafe: true, Dir: dir, Mint: "http://other.example"}); err == nil || !strings.Contains(err.Error(), "holds ecash of") {
		t.Fatalf("another mint: %v", err)
	}
	w, err = OpenWallet(WalletConfig{DirectMintConnectionUnsafe: true, Dir: dir})
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

// Without a MintTransport, a wallet reaches the mint only if the user
// asked for a direct connection; a request that names no operation gets
// one of its own, of the wallet's class.
func TestWalletMintTransport(t *testing.T) {
	url := mint.StartTest(t, testMint, mint.ServerConfig{}).URL
	if _, err := OpenWallet(WalletConfig{Dir: t.TempDir(), Mint: url}); !errors.Is(err, ErrNoMintTransport) {
		t.Fatalf("a wallet with no way to the mint: %v, want ErrNoMintTransport", err)
	}
	if _, err := OpenPayee(context.Background(), t.TempDir(), RelayPayment{Mint: url, PerMiB: 1}, PayeeOptions{}); !errors.Is(err, ErrNoMintTransport) {
		t.Fatalf("a relay with no way to the mint: %v, want ErrNoMintTransport", err)
	}
	var ops []MintOp
	tr := MintTransportFunc(func(op MintOp, r *http.Request) (*http.Response, error) {
		ops = append(ops, op)
		return http.DefaultTransport.RoundTrip(r)
	})
	w, err := openWallet(WalletConfig{Dir: t.TempDir(), Mint: url, Transport: tr}, MintSettle)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Load(context.Background()); err != nil { // two requests, no operation named
		t.Fatal(err)
	}
	op := NewMintOp(MintKeysets)
	if err := w.Load(WithMintOp(context.Background(), op)); err != nil {
		t.Fatal(err)
	}
	if len(ops) != 4 || ops[0].Class != MintSettle || ops[1].Class != MintSettle || ops[0].Key == ops[1].Key ||
		ops[2] != op || ops[3] != op {
		t.Fatalf("operations of the requests: %v", ops)
	}
}
