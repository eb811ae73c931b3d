package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/internal/status"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment/wallet"
)

// walletMode is how much of the mint a wallet command needs.
type walletMode int

const (
	walletOnline  walletMode = iota // the command fails without the mint
	walletOffline                   // it goes on with what the wallet last knew
	walletLocal                     // it does not ask the mint (once the mint is known)
)

// walletSession is an open wallet (the journal's lock held) whose keyset
// is loaded, unless the mode let it go on without.
type walletSession struct {
	w      *wallet.Wallet
	client *wallet.MintClient // for quote states, which package wallet does not track
	hc     *http.Client       // direct, or through the SOCKS proxy
	// transport takes the wallet's requests through the SOCKS proxy,
	// each operation with SOCKS credentials of its own (so on a circuit
	// of its own); nil with --direct-mint-connection-unsafe.
	transport pay.MintTransport
	dir       string
	seed      []byte
	name      string // "wallet send", for messages
	e         env
}

// socksMintTransport sends each mint operation through the SOCKS5 proxy
// with credentials of its own, which an obol proxy takes as an isolation
// key: no two operations share a circuit, and none is reused.
func socksMintTransport(proxy *url.URL) pay.MintTransport {
	return pay.MintTransportFunc(func(op pay.MintOp, r *http.Request) (*http.Response, error) {
		u := *proxy
		u.User = url.UserPassword(fmt.Sprintf("mint-%d", op.Class), hex.EncodeToString(op.Key[:]))
		tr := &http.Transport{Proxy: http.ProxyURL(&u), DisableKeepAlives: true}
		resp, err := tr.RoundTrip(r)
		if err != nil {
			return nil, fmt.Errorf("the mint is reached through the obol proxy at %s (start obol proxy, or give --proxy; --direct-mint-connection-unsafe reveals this host to the mint): %w", proxy.Host, err)
		}
		return resp, nil
	})
}

// openWallet opens the wallet in the data directory: it checks -mint
// against the one remembered, asks a new mint for its keysets before
// remembering it, and then (unless local) loads the keyset, settles what
// an interrupted command left pending and claims paid top-ups.
func openWallet(ctx context.Context, o walletOptions, fs *flag.FlagSet, e env, mode walletMode) (*walletSession, int, bool) {
	if e.now == nil {
		e.now = time.Now
	}
	mintURL, code, ok := checkWalletFlags(fs, o)
	if !ok {
		return nil, code, false
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 15 * time.Second}).DialContext
	s := &walletSession{dir: o.dataDir, name: fs.Name(), e: e, hc: &http.Client{Transport: tr}}
	if !o.directUnsafe {
		proxy := &url.URL{Scheme: "socks5", Host: o.proxy}
		tr.Proxy = http.ProxyURL(proxy)
		s.transport = socksMintTransport(proxy)
	}
	opened := false
	defer func() {
		if !opened {
			s.hc.CloseIdleConnections()
		}
	}()
	known, err := readMintFile(s.dir)
	switch {
	case err != nil:
		return nil, s.fail("%v", err), false
	case mintURL == "" && known == "":
		fmt.Fprintf(fs.Output(), "obol %s: -mint URL is required the first time: the mint whose ecash the wallet in %s keeps\n", s.name, s.dir)
		return nil, exitUsage, false
	case mintURL != "" && known != "" && mintURL != known:
		return nil, usageError(fs, "mint", o.mint, "this wallet keeps ecash of "+known+"; give another -data-dir for another mint"), false
	case known == "":
		if err := s.probe(ctx, mintURL); err != nil {
			return nil, s.failErr(err), false
		}
	}
	if code, ok := s.open(mintURL); !ok {
		return nil, code, false
	}
	if mode != walletLocal {
		if err := s.start(ctx); err != nil && mode == walletOnline {
			s.w.Close()
			return nil, s.failErr(err), false
		} else if err != nil {
			fmt.Fprintf(e.stderr, "obol %s: %s; showing what the wallet last knew\n", s.name, s.describe(err))
		}
	}
	opened = true
	return s, 0, true
}

// checkWalletFlags checks -data-dir and -mint and returns the mint's URL
// without trailing slashes ("" when not given).
func checkWalletFlags(fs *flag.FlagSet, o walletOptions) (string, int, bool) {
	if o.dataDir == "" {
		return "", usageError(fs, "data-dir", "", "no home directory to default to; give a directory"), false
	}
	if o.mint == "" {
		return "", 0, true
	}
	if err := pay.CheckMintURL(o.mint); err != nil {
		return "", usageError(fs, "mint", o.mint, "want the mint's http(s) URL, such as http://127.0.0.1:3338"), false
	}
	return strings.TrimRight(o.mint, "/"), 0, true
}

// probe asks a mint not yet remembered for its keysets, so that a
// mistyped URL is not written down.
func (s *walletSession) probe(ctx context.Context, mintURL string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	_, err := wallet.NewMintClient(mintURL, s.hc).Keysets(ctx)
	var ue *url.Error
	if err != nil && !errors.As(err, &ue) {
		return fmt.Errorf("%s does not answer as a Cashu mint: %s", mintURL, strings.TrimPrefix(err.Error(), "wallet: "))
	}
	return err
}

// open opens the wallet's journal and reads its seed.
func (s *walletSession) open(mintURL string) (int, bool) {
	if _, err := os.Stat(filepath.Join(s.dir, walletJournalFile)); err == nil {
		if _, err := os.Stat(filepath.Join(s.dir, pay.WalletSeedFile)); errors.Is(err, fs.ErrNotExist) {
			return s.fail("the wallet in %s has a journal but no seed file %s; restore it from a backup", s.dir, pay.WalletSeedFile), false
		}
	}
	if err := prepareDir(s.dir); err != nil {
		return s.fail("%v", err), false
	}
	w, err := pay.OpenWallet(pay.WalletConfig{Dir: s.dir, Mint: mintURL, Unit: walletUnit, HTTPClient: s.hc, Now: s.e.now,
		Transport: s.transport, DirectMintConnectionUnsafe: s.transport == nil})
	if errors.Is(err, wallet.ErrInUse) {
		return s.fail("the wallet in %s is in use by another process (obol proxy or another wallet command); wait for it to end", s.dir), false
	}
	if err != nil {
		return s.fail("%v", err), false
	}
	s.w = w
	if s.seed, err = os.ReadFile(filepath.Join(s.dir, pay.WalletSeedFile)); err != nil {
		w.Close()
		return s.fail("%v", err), false
	}
	s.client = wallet.NewMintClient(w.MintURL(), s.hc)
	if u, _ := url.Parse(w.MintURL()); u.Scheme == "http" && !status.IsLoopbackHost(u.Host) {
		fmt.Fprintf(s.e.stderr, "obol %s: warning: the mint is reached over plain http: anyone on the path can take the ecash in transit\n", s.name)
	}
	return 0, true
}

// start loads the mint's keyset, settles pending operations and claims
// paid top-ups.
func (s *walletSession) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := s.w.Load(ctx); err != nil {
		return err
	}
	if n, err := s.w.Recover(ctx); n > 0 {
		why := "a payment in flight or an unpaid quote"
		if err != nil {
			why = s.describe(err)
		}
		fmt.Fprintf(s.e.stderr, "obol %s: %d operations still pending (%s); a later command settles them\n", s.name, n, why)
	}
	s.claimQuotes(ctx)
	return nil
}

func (s *walletSession) close() {
	s.w.Close()
	s.hc.CloseIdleConnections()
}

// fail prints a one-line error and returns exitFail.
func (s *walletSession) fail(format string, args ...any) int {
	fmt.Fprintf(s.e.stderr, "obol %s: %s\n", s.name, fmt.Sprintf(format, args...))
	return exitFail
}

// failErr prints an error of package wallet as one line.
func (s *walletSession) failErr(err error) int {
	msg := s.describe(err)
	if s.w != nil && s.w.Pending() > 0 {
		msg += "; the operation is pending and the next wallet command settles it"
	}
	return s.fail("%s", msg)
}

// describe turns an error of package wallet into one line for a person.
// No error of package wallet carries a proof.
func (s *walletSession) describe(err error) string {
	var refused *wallet.MintError
	var ue *url.Error
	switch {
	case errors.As(err, &refused):
		return fmt.Sprintf("the mint refused: %s (code %d)", printable(refused.Detail), refused.Code)
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &ue) && ue.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "the mint did not answer in time"
	case errors.As(err, &ue) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return fmt.Sprintf("the connection to the mint at %s broke before its answer (%s)", mintOf(ue), netReason(ue))
	case errors.As(err, &ue):
		return fmt.Sprintf("cannot reach the mint at %s: %s", mintOf(ue), netReason(ue))
	}
	msg := strings.TrimPrefix(err.Error(), "wallet: ")
	return strings.TrimSuffix(msg, " (the operation is pending; Recover settles it)") // failErr says so
}

// mintOf is the scheme and host a failed request went to.
func mintOf(ue *url.Error) string {
	u, err := url.Parse(ue.URL)
	if err != nil {
		return "the mint"
	}
	return u.Scheme + "://" + u.Host
}

// netReason is why a request did not reach the mint, without the URL.
func netReason(ue *url.Error) string {
	var op *net.OpError
	if errors.As(ue.Err, &op) {
		return op.Err.Error()
	}
	return ue.Err.Error()
}

// printable keeps a remote mint's text to one short line of printable
// characters.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// readMintFile returns the remembered mint URL ("" when none).
func readMintFile(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, pay.WalletMintFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("the wallet's mint: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// lockKey is the key tokens are locked to for this wallet (NUT-11),
// derived from its seed.
func lockKey(seed []byte) *btcec.PrivateKey {
	h := sha256.Sum256(append([]byte("obol wallet lock key v1"), seed...))
	k, _ := btcec.PrivKeyFromBytes(h[:])
	return k
}

// writeFileAtomic replaces path with b (mode 0600), synced.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
