package pay

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/obolnet/obol/internal/keyfile"
	"github.com/obolnet/obol/payment/wallet"
)

// Files of a wallet directory.
const (
	WalletMintFile = "mint"        // the URL of the wallet's one mint
	WalletSeedFile = "wallet.seed" // the wallet's NUT-13 seed
)

// WalletConfig locates a user's wallet.
type WalletConfig struct {
	Dir string // created 0700; the seed and the journal live here
	// Mint is the mint's URL: required the first time, after which the
	// directory remembers it; a different one is refused.
	Mint string
	Unit string // default sat
	// Transport carries every request to the mint, each operation
	// through an isolation of its own (MintTransport). Required unless
	// DirectMintConnectionUnsafe is set.
	Transport MintTransport
	// DirectMintConnectionUnsafe lets the wallet reach the mint straight
	// from this host's address when no Transport is given: the mint then
	// sees who funds, settles and restores, and can link the user to the
	// relays of their circuits. For local tests and a user who asks.
	DirectMintConnectionUnsafe bool
	// HTTPClient reaches the mint directly (with
	// DirectMintConnectionUnsafe; default http.DefaultClient). With a
	// Transport, only its Timeout is used.
	HTTPClient *http.Client
	Now        func() time.Time
}

// OpenWallet opens (or creates) the wallet in cfg.Dir: its seed is made
// once and kept with mode 0600, its mint remembered. It does not contact
// the mint (call Load). Only one process may have a wallet open.
func OpenWallet(cfg WalletConfig) (*wallet.Wallet, error) {
	return openWallet(cfg, MintPool)
}

// openWallet opens a wallet whose requests that name no operation
// (MintOpFrom) each get an operation of class def.
func openWallet(cfg WalletConfig, def MintClass) (*wallet.Wallet, error) {
	hc, err := mintHTTPClient(cfg.Transport, def, cfg.HTTPClient, cfg.DirectMintConnectionUnsafe)
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	if cfg.Dir == "" {
		return nil, errors.New("wallet: no directory given")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	mint, err := rememberMint(filepath.Join(cfg.Dir, WalletMintFile), cfg.Mint)
	if err != nil {
		return nil, err
	}
	seed, err := keyfile.Load(filepath.Join(cfg.Dir, WalletSeedFile), 32)
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	w, err := wallet.Open(wallet.Config{Mint: mint, Unit: cfg.Unit, Seed: seed, Dir: cfg.Dir, HTTPClient: hc, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("wallet in %s: %w", cfg.Dir, err)
	}
	return w, nil
}

// CheckMintURL refuses what cannot be a mint's URL.
func CheckMintURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("mint URL %q is not an http(s) URL such as https://mint.example", s)
	}
	return nil
}

// rememberMint returns the mint of the wallet at path: the one given,
// written down the first time, or the one remembered.
func rememberMint(path, given string) (string, error) {
	given = strings.TrimRight(given, "/")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if given == "" {
			return "", errors.New("wallet: no mint yet; give the mint's URL")
		}
		if err := CheckMintURL(given); err != nil {
			return "", fmt.Errorf("wallet: %w", err)
		}
		if err := os.WriteFile(path, []byte(given+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("wallet: %w", err)
		}
		return given, nil
	case err != nil:
		return "", fmt.Errorf("wallet: %w", err)
	}
	known := strings.TrimSpace(string(b))
	if given != "" && given != known {
		return "", fmt.Errorf("wallet: this wallet holds ecash of %s, not %s; use another wallet directory for another mint", known, given)
	}
	return known, nil
}
