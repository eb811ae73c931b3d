package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/mint"
	"github.com/obolnet/obol/payment/wallet"
)

// startMintCmd runs `obol mint` on a loopback port and returns its URL.
func startMintCmd(t *testing.T, args ...string) (string, *background) {
	t.Helper()
	b := start(t, append([]string{"mint", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)...)
	return b.waitOutput(t, "mint URL:"), b
}

// testWallet is a wallet directory driven through `obol wallet`.
type testWallet struct {
	t         *testing.T
	dir, mint string
}

func newTestWallet(t *testing.T, mintURL string) testWallet {
	return testWallet{t: t, dir: filepath.Join(t.TempDir(), "wallet"), mint: mintURL}
}

// run runs `obol wallet --data-dir DIR --mint URL args...`.
func (w testWallet) run(args ...string) (int, string, string) {
	return runCmd(context.Background(), append([]string{"wallet", "--data-dir", w.dir, "--mint", w.mint, "--direct-mint-connection-unsafe"}, args...)...)
}

// must runs a wallet command that must succeed and returns its stdout.
func (w testWallet) must(args ...string) string {
	w.t.Helper()
	code, out, errs := w.run(args...)
	if code != exitOK {
		w.t.Fatalf("wallet %s: exit %d; stderr:\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

// fails runs a wallet command that must exit with code and print one
// line on stderr containing each of want.
func (w testWallet) fails(code int, args []string, want ...string) string {
	w.t.Helper()
	got, _, errs := w.run(args...)
	if got != code {
		w.t.Fatalf("wallet %s: exit %d, want %d; stderr:\n%s", strings.Join(args, " "), got, code, errs)
	}
	for _, s := range want {
		if !strings.Contains(errs, s) {
			w.t.Errorf("wallet %s: stderr %q does not say %q", strings.Join(args, " "), errs, s)
		}
	}
	if code == exitFail && strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		w.t.Errorf("wallet %s: error is not one line:\n%s", strings.Join(args, " "), errs)
	}
	return errs
}

func (w testWallet) balance() uint64 {
	w.t.Helper()
	return parseBalance(w.t, w.must("balance"))
}

// parseBalance reads the "balance: N sat" line of a command's output.
func parseBalance(t *testing.T, out string) uint64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "balance: "); ok {
			n, err := strconv.ParseUint(strings.TrimSuffix(rest, " sat"), 10, 64)
			if err != nil {
				t.Fatalf("balance line %q", line)
			}
			return n
		}
	}
	t.Fatalf("no balance in %q", out)
	return 0
}

// send runs `wallet send` and checks that stdout is the token alone.
func (w testWallet) send(args ...string) string {
	w.t.Helper()
	code, out, errs := w.run(append([]string{"send"}, args...)...)
	if code != exitOK {
		w.t.Fatalf("send %v: exit %d; stderr:\n%s", args, code, errs)
	}
	token := strings.TrimSuffix(out, "\n")
	if !strings.HasPrefix(token, "cashuB") || strings.ContainsAny(token, " \n") {
		w.t.Fatalf("send printed %q, want a token alone", out)
	}
	checkNoProofs(w.t, errs, token)
	return token
}

// checkNoProofs fails if text shows a secret or a signature of the
// token's proofs, or the token itself.
func checkNoProofs(t *testing.T, text, token string) {
	t.Helper()
	tok, err := payment.DecodeToken(token)
	if err != nil {
		t.Fatal(err)
	}
	leaks := []string{token[6:40]}
	for _, p := range tok.Proofs {
		leaks = append(leaks, p.Secret, p.C)
	}
	for _, l := range leaks {
		if strings.Contains(text, l) {
			t.Fatalf("proof material %q shown in:\n%s", l, text)
		}
	}
}

// TestWalletFlows tops up, sends, receives and withdraws between wallets
// over a real `obol mint`, without and with input fees, and checks every
// balance to the sat.
func TestWalletFlows(t *testing.T) {
	for _, tc := range []struct {
		name string
		fee  string
		// Every operation below spends inputs worth less than 1000 sat,
		// so its fee is 0 or 1 sat.
		perOp uint64
	}{{"no fee", "0", 0}, {"fee 100 ppk", "100", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := startMintCmd(t, "--fee-ppk", tc.fee)
			a, b := newTestWallet(t, url), newTestWallet(t, url)
			out := a.must("topup", "1000")
			if !strings.Contains(out, "invoice: lnbcrt") || parseBalance(t, out) != 1000 {
				t.Fatalf("topup printed %q", out)
			}
			token := a.send("300")
			if got := a.balance(); got != 1000-300-tc.perOp {
				t.Fatalf("sender's balance %d", got)
			}
			out = b.must("receive", token)
			if !strings.Contains(out, "received "+strconv.FormatUint(300-tc.perOp, 10)+" sat") || b.balance() != 300-tc.perOp {
				t.Fatalf("receive printed %q", out)
			}
			checkNoProofs(t, b.fails(exitFail, []string{"receive", token}, "already spent"), token)

			token = a.send("50")
			receiveStdin(t, b, token)
			if got := b.balance(); got != 300+50-2*tc.perOp {
				t.Fatalf("receiver's balance after stdin %d", got)
			}

			before := a.balance()
			invoice, _, _ := mint.NewFakeLightning().CreateInvoice(100_000) // 100 sat
			out = a.must("withdraw", invoice)
			if !strings.Contains(out, "paid 100 sat") || a.balance() != before-100-tc.perOp {
				t.Fatalf("withdraw printed %q; balance %d from %d", out, a.balance(), before)
			}
			hist := a.must("history")
			for _, kind := range []string{"topup", "send", "withdraw"} {
				if !strings.Contains(hist, kind) {
					t.Errorf("history lacks %s:\n%s", kind, hist)
				}
			}
			if !strings.Contains(b.must("history"), "receive") {
				t.Error("receiver's history lacks the receive")
			}
		})
	}
}

// receiveStdin redeems a token read from stdin ("receive -").
func receiveStdin(t *testing.T, w testWallet, token string) {
	t.Helper()
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pw.WriteString(token + "\n")
	pw.Close()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old; r.Close() }()
	w.must("receive", "-")
}

// A token locked to a wallet's key is redeemed by that wallet only.
func TestWalletLockedToken(t *testing.T) {
	url, _ := startMintCmd(t)
	a, b, c := newTestWallet(t, url), newTestWallet(t, url), newTestWallet(t, url)
	a.must("topup", "100")
	key := strings.TrimSpace(b.must("pubkey"))
	if again := strings.TrimSpace(b.must("pubkey")); again != key || len(key) != 66 {
		t.Fatalf("pubkey %q, then %q", key, again)
	}
	token := a.send("40", "--lock", key)
	checkNoProofs(t, c.fails(exitFail, []string{"receive", token}, "locked to a key this wallet does not hold"), token)
	if c.balance() != 0 {
		t.Fatal("a wallet without the key got ecash")
	}
	b.must("receive", token)
	if b.balance() != 40 {
		t.Fatalf("key holder's balance %d", b.balance())
	}
	a.fails(exitUsage, []string{"send", "5", "--lock", "02abcd"}, `invalid value "02abcd" for flag -lock`, "66 hex digits")
}

// Arguments are checked before the wallet is opened: exit 2, the value and
// why, and no money moves.
func TestWalletBadArgs(t *testing.T) {
	url, _ := startMintCmd(t)
	w := newTestWallet(t, url)
	w.must("topup", "10")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topup", "0"}, `invalid AMOUNT "0": want at least 1 sat`},
		{[]string{"topup", "-1"}, `invalid AMOUNT "-1": want a whole number`},
		{[]string{"topup", "abc"}, `invalid AMOUNT "abc": want a whole number`},
		{[]string{"topup", "99999999999999999999"}, "too large"},
		{[]string{"topup", "2100000000000001"}, "too large"},
		{[]string{"topup", "5000000000"}, "the mint issues at most 4294967295 sat in one operation"},
		{[]string{"send", "1.5"}, `invalid AMOUNT "1.5"`},
		{[]string{"send", "0"}, `invalid AMOUNT "0": want at least 1 sat`},
		{[]string{"send", "-1"}, `invalid AMOUNT "-1"`},
		{[]string{"send", "abc", "--lock", "02abcd"}, `invalid AMOUNT "abc"`},
		{[]string{"send", "--lock", "x"}, "want AMOUNT, got 0 arguments"},
		{[]string{"send", "1", "2"}, "want AMOUNT, got 2 arguments"},
		{[]string{"receive", "cashuBnot-a-token"}, "not a Cashu token"},
		{[]string{"receive", "hello"}, "not a Cashu token"},
		{[]string{"withdraw", "bc1qnotaninvoice"}, "want a bolt11 invoice"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"balance", "--nope"}, "flag provided but not defined: -nope"},
	} {
		errs := w.fails(exitUsage, tc.args, tc.want)
		if strings.Contains(errs, "goroutine") {
			t.Errorf("%v: a stack on stderr", tc.args)
		}
	}
	if w.balance() != 10 {
		t.Fatalf("balance %d after refused commands", w.balance())
	}
}

// Spending more than the wallet holds fails with a one-line reason.
func TestWalletInsufficient(t *testing.T) {
	url, _ := startMintCmd(t)
	w := newTestWallet(t, url)
	w.fails(exitFail, []string{"send", "10"}, "insufficient balance", "the wallet holds 0 sat")
	w.must("topup", "20")
	w.fails(exitFail, []string{"send", "21"}, "insufficient balance", "the wallet holds 20 sat")
	invoice, _, _ := mint.NewFakeLightning().CreateInvoice(50_000)
	w.fails(exitFail, []string{"withdraw", invoice}, "insufficient balance")
	if w.balance() != 20 {
		t.Fatalf("balance %d", w.balance())
	}
}

// The wallet remembers its mint once it has answered, refuses another,
// keeps its seed private, and works offline for balance and history.
func TestWalletMintRemembered(t *testing.T) {
	url, mintCmd := startMintCmd(t)
	other, _ := startMintCmd(t)
	dir := filepath.Join(t.TempDir(), "wallet")
	w := testWallet{t: t, dir: dir}
	w.fails(exitUsage, []string{"balance"}, "-mint", "required the first time")
	w.mint = "ftp://mint.example"
	w.fails(exitUsage, []string{"balance"}, `invalid value "ftp://mint.example" for flag -mint`)
	w.mint = "http://127.0.0.1:1"
	w.fails(exitFail, []string{"balance"}, "cannot reach the mint at http://127.0.0.1:1", "connection refused")
	w.mint = ""
	w.fails(exitUsage, []string{"balance"}, "required the first time") // not remembered

	w.mint = url + "/"
	w.must("topup", "7")
	w.mint = ""
	if w.balance() != 7 {
		t.Fatal("the wallet did not remember its mint")
	}
	w.mint = other
	w.fails(exitUsage, []string{"balance"}, "this wallet keeps ecash of "+url)
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, pay.WalletSeedFile), 0o600)

	mintCmd.stop(t)
	w.mint = ""
	code, out, errs := w.run("balance")
	if code != exitOK || parseBalance(t, out) != 7 || !strings.Contains(errs, "cannot reach the mint") {
		t.Fatalf("offline balance: exit %d, %q, %q", code, out, errs)
	}
	w.fails(exitFail, []string{"send", "1"}, "cannot reach the mint at "+url, "connection refused")
}

// Only one process has a wallet open.
func TestWalletInUse(t *testing.T) {
	url, _ := startMintCmd(t)
	w := newTestWallet(t, url)
	w.must("balance")
	held, err := pay.OpenWallet(pay.WalletConfig{Dir: w.dir, DirectMintConnectionUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	w.fails(exitFail, []string{"balance"}, "in use by another process")
}

// A malformed or foreign token is refused without touching the mint, and
// a token's text never reaches stderr.
func TestWalletForeignToken(t *testing.T) {
	url, _ := startMintCmd(t)
	other, _ := startMintCmd(t)
	a, b := newTestWallet(t, other), newTestWallet(t, url)
	a.must("topup", "5")
	token := a.send("5")
	checkNoProofs(t, b.fails(exitFail, []string{"receive", token}, "ecash of the mint \""+other+"\""), token)
	checkNoProofs(t, b.fails(exitUsage, []string{"receive", token[:len(token)-10]}, "not a Cashu token"), token)
}

// quoteRecorder serves a mint and notes the id of every mint quote it
// issues, as the payer of its invoice would know it.
type quoteRecorder struct {
	h      http.Handler
	mu     sync.Mutex
	quotes []string
}

func (q *quoteRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/mint/quote/bolt11" {
		q.h.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	q.h.ServeHTTP(rec, r)
	var mq payment.MintQuote
	if json.Unmarshal(rec.Body.Bytes(), &mq) == nil {
		q.mu.Lock()
		q.quotes = append(q.quotes, mq.Quote)
		q.mu.Unlock()
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func (q *quoteRecorder) last() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.quotes[len(q.quotes)-1]
}

// topup waits for its invoice to be paid; interrupted, it keeps the quote
// and a later command claims it once paid.
func TestWalletTopUpWaits(t *testing.T) {
	var rec *quoteRecorder
	srv := mint.StartTest(t, mint.Config{Seed: []byte("wallet command test mint seed"), HoldInvoices: true},
		mint.ServerConfig{Wrap: func(h http.Handler) http.Handler { rec = &quoteRecorder{h: h}; return rec }})
	m := srv.Mint
	w := newTestWallet(t, srv.URL)

	b := start(t, "wallet", "--data-dir", w.dir, "--mint", w.mint, "--direct-mint-connection-unsafe", "topup", "64")
	b.waitOutput(t, "invoice:")
	waitStderr(t, b, "waiting for the invoice to be paid")
	if err := m.PayMintQuote(rec.last()); err != nil {
		t.Fatal(err)
	}
	<-b.done
	if b.code != exitOK || parseBalance(t, b.out.String()) != 64 {
		t.Fatalf("topup: exit %d, %q, %q", b.code, b.out.String(), b.err.String())
	}

	b = start(t, "wallet", "--data-dir", w.dir, "--mint", w.mint, "--direct-mint-connection-unsafe", "topup", "32")
	b.waitOutput(t, "invoice:")
	waitStderr(t, b, "waiting for the invoice to be paid")
	if code := b.stop(t); code != exitFail || !strings.Contains(b.err.String(), "stopped waiting") {
		t.Fatalf("interrupted topup: exit %d, %q", code, b.err.String())
	}
	if w.balance() != 64 {
		t.Fatal("an unpaid quote was claimed")
	}
	if err := m.PayMintQuote(rec.last()); err != nil {
		t.Fatal(err)
	}
	code, out, errs := w.run("balance")
	if code != exitOK || parseBalance(t, out) != 96 || !strings.Contains(errs, "claimed a paid top-up of 32 sat") {
		t.Fatalf("balance after payment: exit %d, %q, %q", code, out, errs)
	}
	if w.balance() != 96 {
		t.Fatal("the quote was claimed twice")
	}
}

// waitStderr waits until a background command's stderr says s.
func waitStderr(t *testing.T, b *background, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(b.err.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr never said %q:\n%s", s, b.err.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// `obol mint` keeps its seed, so its keysets and ecash survive a
// restart; a seed file gives the same keysets anywhere.
func TestMintRestartKeepsKeys(t *testing.T) {
	dir := t.TempDir()
	b := start(t, "mint", "--listen", "127.0.0.1:0", "--data-dir", dir)
	url := b.waitOutput(t, "mint URL:")
	if !strings.Contains(b.err.String(), "test mint") {
		t.Errorf("no test mint warning:\n%s", b.err.String())
	}
	w := newTestWallet(t, url)
	w.must("topup", "21")
	ids := keysetIDs(t, url)
	b.stop(t)
	checkMode(t, filepath.Join(dir, mintSeedFile), 0o600)

	b = start(t, "mint", "--listen", strings.TrimPrefix(url, "http://"), "--data-dir", dir)
	b.waitOutput(t, "mint URL:")
	if got := keysetIDs(t, url); got != ids {
		t.Fatalf("keysets %s after a restart, were %s", got, ids)
	}
	w.send("21") // the ecash is still good
	b.stop(t)

	seed := filepath.Join(t.TempDir(), "seed")
	os.WriteFile(seed, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	url1, _ := startMintCmd(t, "--seed-file", seed)
	url2, _ := startMintCmd(t, "--seed-file", seed)
	if keysetIDs(t, url1) != keysetIDs(t, url2) {
		t.Fatal("one seed file, two keysets")
	}
}

func keysetIDs(t *testing.T, url string) string {
	t.Helper()
	ks, err := wallet.NewMintClient(url, nil).Keysets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range ks {
		ids = append(ids, k.Unit+":"+k.ID)
	}
	return strings.Join(ids, ",")
}

func TestMintBadFlags(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open-seed")
	os.WriteFile(open, []byte(strings.Repeat("ab", 32)), 0o644)
	short := filepath.Join(dir, "short-seed")
	os.WriteFile(short, []byte("abcd"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--units", "btc"}, `unknown unit "btc"`},
		{[]string{"--units", "sat,sat"}, "given twice"},
		{[]string{"--fee-ppk", "1000"}, "want 0 to 999"},
		{[]string{"--fee-ppk", "-1"}, "want 0 to 999"},
		{[]string{"--listen", "nowhere"}, "want host:port"},
		{[]string{"--seed-file", filepath.Join(dir, "none")}, "no such file"},
		{[]string{"--seed-file", open}, "lets others read it"},
		{[]string{"--seed-file", short}, "at least 16 bytes"},
		{[]string{"--hidden-service"}, "joins the network through at least one relay"},
		{[]string{"--bootstrap", "/ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3KooWBhMbLvQvkpi2t8F8Nxz4kG1ncRZbrYVeTDz5wnwTJxzb"}, "add --hidden-service"},
	} {
		code, _, errs := runCmd(context.Background(), append([]string{"mint", "--data-dir", dir}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("mint %v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errs, tc.want)
		}
	}
}

// loseAnswer serves a mint but, while armed, drops the connection after
// the mint has executed a request to path: the wallet never hears that
// its operation went through, as after a crash or a reset.
type loseAnswer struct {
	h     http.Handler
	path  string
	armed atomic.Bool
}

func (l *loseAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != l.path || !l.armed.CompareAndSwap(true, false) {
		l.h.ServeHTTP(w, r)
		return
	}
	l.h.ServeHTTP(httptest.NewRecorder(), r)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// A send whose answer was lost leaves its operation pending; the next
// command settles it and no sat is lost (the token was never printed, so
// its proofs stay in the wallet).
func TestWalletRecoversLostAnswer(t *testing.T) {
	var lose *loseAnswer
	srv := mint.StartTest(t, mint.Config{Seed: []byte("wallet command test mint seed")},
		mint.ServerConfig{Wrap: func(h http.Handler) http.Handler { lose = &loseAnswer{h: h, path: "/v1/swap"}; return lose }})
	w := newTestWallet(t, srv.URL)
	w.must("topup", "500")

	lose.armed.Store(true)
	code, out, errs := w.run("send", "100")
	if code != exitFail || out != "" || !strings.Contains(errs, "broke before its answer") || !strings.Contains(errs, "the operation is pending") {
		t.Fatalf("send with a lost answer: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if got := w.balance(); got != 500 {
		t.Fatalf("balance %d after recovery, want 500", got)
	}
	if hist := w.must("history"); !strings.Contains(hist, "recovered") {
		t.Fatalf("history does not show the recovered send:\n%s", hist)
	}
}

// A kept quote whose invoice expired unpaid is forgotten.
func TestWalletQuoteExpires(t *testing.T) {
	srv := mint.StartTest(t, mint.Config{Seed: []byte("wallet command test mint seed"), HoldInvoices: true}, mint.ServerConfig{})
	w := newTestWallet(t, srv.URL)
	b := start(t, "wallet", "--data-dir", w.dir, "--mint", w.mint, "--direct-mint-connection-unsafe", "topup", "8")
	waitStderr(t, b, "waiting for the invoice to be paid")
	b.stop(t)

	later := func() time.Time { return time.Now().Add(2 * time.Hour) } // past the mint's 1 h quote expiry
	var out, errs syncBuffer
	code := run(context.Background(), []string{"wallet", "--data-dir", w.dir, "--direct-mint-connection-unsafe", "balance"}, env{stdout: &out, stderr: &errs, now: later})
	if code != exitOK || !strings.Contains(errs.String(), "a top-up of 8 sat: the invoice expired unpaid") {
		t.Fatalf("balance after expiry: exit %d, %q", code, errs.String())
	}
	b2, err := os.ReadFile(filepath.Join(w.dir, walletQuotesFile))
	var kept []pendingQuote
	if err != nil || json.Unmarshal(b2, &kept) != nil || len(kept) != 0 {
		t.Fatalf("quotes kept after expiry: %s (%v)", b2, err)
	}
}

// The mint listens on loopback unless told otherwise, and reads its flags
// from a config file as the other commands do.
func TestMintFlagDefaults(t *testing.T) {
	o, _, ok := mintFlags(nil, io.Discard)
	if !ok || o.listen != "127.0.0.1:3338" || o.feePPK != 0 || strings.Join(o.units, ",") != "sat,msat" {
		t.Fatalf("defaults: %+v", o)
	}
	file := filepath.Join(t.TempDir(), "mint.yaml")
	os.WriteFile(file, []byte("units: [sat]\nfee-ppk: 5\nlisten: 127.0.0.1:4000\n"), 0o600)
	o, _, ok = mintFlags([]string{"--config", file}, io.Discard)
	if !ok || o.listen != "127.0.0.1:4000" || o.feePPK != 5 || strings.Join(o.units, ",") != "sat" {
		t.Fatalf("from %s: %+v", file, o)
	}
}
