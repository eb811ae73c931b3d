package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/wallet"
)

// `obol wallet` keeps ecash of one mint, in sat, in its data directory
// (~/.obol/wallet by default; obol proxy and obol serve pay from the same
// directory, their -wallet-dir):
//
//	wallet.seed  NUT-13 seed (0600), made on first use; it also derives
//	             the key tokens can be locked to for this wallet
//	mint         the mint's URL, remembered once the mint has answered
//	wallet.jsonl package wallet's journal of proofs and operations
//	quotes.json  top-up quotes whose invoice was not paid yet
//
// Only one process has the wallet open at a time. Every command that
// talks to the mint first settles what an interrupted command left
// pending (Recover) and claims paid top-ups. Proofs are never printed,
// except the token `send` is asked for, on stdout.

const (
	walletQuotesFile  = "quotes.json"  // top-ups waiting for payment
	walletJournalFile = "wallet.jsonl" // package wallet's; its presence means the wallet holds state
)

// walletUnit is the unit the wallet keeps.
const walletUnit = "sat"

// maxAmount is more sat than there will ever be bitcoin: a larger amount
// is a typing error.
const maxAmount = 2_100_000_000_000_000

// startTimeout bounds loading the keyset and settling pending operations.
const startTimeout = 30 * time.Second

// quotePoll is how often topup asks whether its invoice was paid.
const quotePoll = time.Second

// walletOptions are the flags every wallet command takes.
type walletOptions struct {
	dataDir, mint string
	proxy         string // SOCKS5 proxy the mint is reached through
	directUnsafe  bool   // reach the mint from this host's address
}

// defaultWalletProxy is where `obol proxy` listens by default.
const defaultWalletProxy = "127.0.0.1:9050"

func (o *walletOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.dataDir, "data-dir", o.dataDir, "the wallet's `directory` (created 0700; its seed file 0600)")
	fs.StringVar(&o.mint, "mint", o.mint, "`URL` of the mint (required the first time; remembered after)")
	fs.StringVar(&o.proxy, "proxy", o.proxy, "SOCKS5 `address` (an obol proxy) the mint is reached through, every operation on a circuit of its own")
	fs.BoolVar(&o.directUnsafe, "direct-mint-connection-unsafe", o.directUnsafe, "reach the mint straight from this host's address: the mint learns who holds this ecash (local test networks only)")
}

type walletCommand struct {
	name, args, summary string
	run                 func(ctx context.Context, o walletOptions, args []string, e env) int
}

func walletCommands() []walletCommand {
	return []walletCommand{
		{"balance", "", "print the balance", walletBalance},
		{"topup", "AMOUNT", "get an invoice of AMOUNT sat from the mint, wait until it is paid, claim the ecash", walletTopUp},
		{"receive", "TOKEN|-", "redeem a Cashu token (- reads it from stdin)", walletReceive},
		{"send", "AMOUNT [--lock PUBKEY]", "print a token of AMOUNT sat on stdout, locked to PUBKEY if given", walletSend},
		{"withdraw", "INVOICE", "pay a bolt11 invoice from the wallet", walletWithdraw},
		{"history", "", "list the wallet's operations", walletHistory},
		{"pubkey", "", "print the key senders lock tokens to for this wallet", walletPubKey},
	}
}

// runWallet is `obol wallet`: it dispatches to a wallet command.
func runWallet(ctx context.Context, args []string, e env) int {
	o := walletOptions{dataDir: defaultWalletDir(), proxy: defaultWalletProxy}
	fs := flag.NewFlagSet("wallet", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	o.register(fs)
	fs.Usage = func() { walletUsage(fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(e.stderr, "obol wallet: missing command\n\n")
		walletUsage(fs)
		return exitUsage
	}
	if fs.Arg(0) == "help" {
		fs.SetOutput(e.stdout)
		walletUsage(fs)
		return exitOK
	}
	for _, c := range walletCommands() {
		if c.name == fs.Arg(0) {
			return c.run(ctx, o, fs.Args()[1:], e)
		}
	}
	fmt.Fprintf(e.stderr, "obol wallet: unknown command %q\n\n", fs.Arg(0))
	walletUsage(fs)
	return exitUsage
}

func walletUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: obol wallet [flags] COMMAND [ARGS]\n\nCommands:\n")
	for _, c := range walletCommands() {
		fmt.Fprintf(w, "  %-32s %s\n", c.name+" "+c.args, c.summary)
	}
	fmt.Fprintf(w, "\nFlags (before or after the command):\n")
	fs.PrintDefaults()
}

// walletFlagSet is a wallet command's flag set, with the common flags.
func walletFlagSet(name, args string, o *walletOptions, w io.Writer) *flag.FlagSet {
	fs := newFlagSet("wallet "+name, args+" [flags]", w)
	o.register(fs)
	return fs
}

// parseWalletArgs parses flags given before, between or after the
// arguments ("send 100 --lock KEY") and returns the n arguments. A
// negative number is an argument, so that "send -1" is refused as an
// amount rather than as an unknown flag.
func parseWalletArgs(fs *flag.FlagSet, args []string, want ...string) ([]string, int, bool) {
	var pos []string
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' || (a[1] >= '0' && a[1] <= '9') {
			pos, args = append(pos, a), args[1:]
			continue
		}
		n := flagArgs(fs, args)
		if err := fs.Parse(args[:n]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		args = args[n:]
	}
	if len(pos) != len(want) {
		what := "no arguments"
		if len(want) > 0 {
			what = strings.Join(want, " ")
		}
		fmt.Fprintf(fs.Output(), "obol %s: want %s, got %d arguments\n", fs.Name(), what, len(pos))
		return nil, exitUsage, false
	}
	return pos, 0, true
}

// flagArgs is how many of args the flag args[0] takes: one when its value
// follows "=", for a boolean flag or an unknown one (which Parse refuses),
// else two.
func flagArgs(fs *flag.FlagSet, args []string) int {
	name := strings.TrimLeft(args[0], "-")
	if strings.Contains(name, "=") || len(args) == 1 {
		return 1
	}
	if f := fs.Lookup(name); f == nil || isBool(f) {
		return 1
	}
	return 2
}

// argError reports a bad argument, in the flag package's words. The value
// is left out when it is bearer money (a token).
func argError(fs *flag.FlagSet, name, value, why string) int {
	if value == "" {
		fmt.Fprintf(fs.Output(), "obol %s: invalid %s: %s\n", fs.Name(), name, why)
	} else {
		fmt.Fprintf(fs.Output(), "obol %s: invalid %s %q: %s\n", fs.Name(), name, value, why)
	}
	return exitUsage
}

// parseAmount reads a positive whole number of sat.
func parseAmount(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) || (err == nil && n > maxAmount):
		return 0, fmt.Errorf("too large: at most %d sat, all the bitcoin there will be", uint64(maxAmount))
	case err != nil:
		return 0, fmt.Errorf("want a whole number of sat from 1 to %d", uint64(maxAmount))
	case n == 0:
		return 0, errors.New("want at least 1 sat")
	}
	return n, nil
}

// parseLockKey reads a compressed secp256k1 public key in hex.
func parseLockKey(s string) (*btcec.PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err == nil && len(b) == btcec.PubKeyBytesLenCompressed {
		if k, err := btcec.ParsePubKey(b); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("want a compressed public key: 66 hex digits starting with 02 or 03, as obol wallet pubkey prints")
}

// checkAmount refuses an amount the mint's keyset cannot issue in one
// operation (its outputs are the binary digits of the amount).
func (s *walletSession) checkAmount(fs *flag.FlagSet, amount uint64) (int, bool) {
	ks, err := s.w.Keyset()
	if err != nil {
		return s.fail("%v", err), false
	}
	var top uint64
	for a := range ks.Keys {
		top = max(top, a)
	}
	if limit := top<<1 - 1; top < 1<<63 && amount > limit {
		return argError(fs, "AMOUNT", strconv.FormatUint(amount, 10), fmt.Sprintf("the mint issues at most %d sat in one operation", limit)), false
	}
	return 0, true
}

func (s *walletSession) printBalance() {
	fmt.Fprintf(s.e.stdout, "balance: %d %s\n", s.w.Balance(), walletUnit)
}

// walletBalance is `obol wallet balance`.
func walletBalance(ctx context.Context, o walletOptions, args []string, e env) int {
	fs := walletFlagSet("balance", "", &o, e.stderr)
	if _, code, ok := parseWalletArgs(fs, args); !ok {
		return code
	}
	s, code, ok := openWallet(ctx, o, fs, e, walletOffline)
	if !ok {
		return code
	}
	defer s.close()
	s.printBalance()
	return exitOK
}

// walletHistory is `obol wallet history`.
func walletHistory(ctx context.Context, o walletOptions, args []string, e env) int {
	fs := walletFlagSet("history", "", &o, e.stderr)
	if _, code, ok := parseWalletArgs(fs, args); !ok {
		return code
	}
	s, code, ok := openWallet(ctx, o, fs, e, walletOffline)
	if !ok {
		return code
	}
	defer s.close()
	h := s.w.History()
	if len(h) == 0 {
		fmt.Fprintln(e.stdout, "no operations yet")
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tAMOUNT\tFEE\tNOTE")
	for _, en := range h {
		fmt.Fprintf(tw, "%s\t%s\t%d %s\t%d %s\t%s\n", time.Unix(en.Time, 0).UTC().Format(time.RFC3339),
			historyKind(en.Kind), en.Amount, walletUnit, en.Fee, walletUnit, en.Note)
	}
	tw.Flush()
	return exitOK
}

// historyKind names package wallet's operations in this command's words.
func historyKind(k string) string {
	switch k {
	case "mint":
		return "topup"
	case "melt":
		return "withdraw"
	}
	return k
}

// walletPubKey is `obol wallet pubkey`; it does not ask the mint.
func walletPubKey(ctx context.Context, o walletOptions, args []string, e env) int {
	fs := walletFlagSet("pubkey", "", &o, e.stderr)
	if _, code, ok := parseWalletArgs(fs, args); !ok {
		return code
	}
	s, code, ok := openWallet(ctx, o, fs, e, walletLocal)
	if !ok {
		return code
	}
	defer s.close()
	fmt.Fprintln(e.stdout, hex.EncodeToString(lockKey(s.seed).PubKey().SerializeCompressed()))
	return exitOK
}

// walletTopUp is `obol wallet topup AMOUNT`.
func walletTopUp(ctx context.Context, o walletOptions, args []string, e env) int {
	fs := walletFlagSet("topup", "AMOUNT", &o, e.stderr)
	pos, code, ok := parseWalletArgs(fs, args, "AMOUNT")
	if !ok {
		return code
	}
	amount, err := parseAmount(pos[0])
	if err != nil {
		return argError(fs, "AMOUNT", pos[0], err.Error())
	}
	s, code, ok := openWallet(ctx, o, fs, e, walletOnline)
	if !ok {
		return code
	}
	defer s.close()
	if code, ok := s.checkAmount(fs, amount); !ok {
		return code
	}
	q, err := s.w.TopUp(ctx, amount)
	if errors.Is(err, wallet.ErrQuoteUnpaid) {
		pq := pendingQuote{Quote: q.Quote, Amount: amount, Expiry: q.Expiry}
		if err = s.keepQuote(pq); err == nil {
			fmt.Fprintf(e.stdout, "invoice: %s\n", q.Request)
			err = s.awaitQuote(ctx, pq)
		}
	} else if q != nil {
		fmt.Fprintf(e.stdout, "invoice: %s\n", q.Request)
	}
	if err != nil {
		return s.failErr(err)
	}
	s.printBalance()
	return exitOK
}

// walletSend is `obol wallet send AMOUNT [--lock PUBKEY]`.
func walletSend(ctx context.Context, o walletOptions, args []string, e env) int {
	fs := walletFlagSet("send", "AMOUNT", &o, e.stderr)
	lock := fs.String("lock", "", "lock the token to this compressed public `key` in hex (NUT-11): only its holder can redeem it")
	pos, code, ok := parseWalletArgs(fs, args, "AMOUNT")
	if !ok {
		return code
	}
	amount, err := parseAmount(pos[0])
	if err != nil {
		return argError(fs, "AMOUNT", pos[0], err.Error())
	}
	var to *btcec.PublicKey
	if *lock != "" {
		if to, err = parseLockKey(*lock); err != nil {
			return usageError(fs, "lock", *lock, err.Error())
		}
	}
	s, code, ok := openWallet(ctx, o, fs, e, walletOnline)
	if !ok {
		return code
	}
	defer s.close()
	if code, ok := s.checkAmount(fs, amount); !ok {
		return code
	}
	before := s.w.Balance()
	token, err := s.w.Send(ctx, amount, to)
	if errors.Is(err, wallet.ErrInsufficient) {
		return s.fail("insufficient balance: sending %d sat needs that much plus the mint's fee, and the wallet holds %d sat", amount, before)
	}
	if err != nil {
		return s.failErr(err)
	}
	fmt.Fprintln(e.stdout, token)
	after := s.w.Balance()
	fmt.Fprintf(e.stderr, "sent %d sat (fee %d sat); balance: %d sat\n", amount, before-after-amount, after)
	return exitOK
}

// walletReceive is `obol wallet receive TOKEN|-`.
func walletReceive(ctx context.Context, o walletOptions, args []string, e env) int {
	fs := walletFlagSet("receive", "TOKEN|-", &o, e.stderr)
	pos, code, ok := parseWalletArgs(fs, args, "TOKEN")
	if !ok {
		return code
	}
	text := pos[0]
	if text == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, payment.MaxTokenLen+1))
		if err != nil {
			return argError(fs, "TOKEN", "", "reading stdin: "+err.Error())
		}
		text = string(b)
	}
	text = strings.TrimSpace(text)
	tok, err := payment.DecodeToken(text)
	if err != nil {
		return argError(fs, "TOKEN", "", "not a Cashu token (cashuA… or cashuB…): "+strings.TrimPrefix(err.Error(), "payment: "))
	}
	s, code, ok := openWallet(ctx, o, fs, e, walletOnline)
	if !ok {
		return code
	}
	defer s.close()
	if text, err = s.ownToken(tok, text); err != nil {
		return s.fail("%v", err)
	}
	var worth uint64
	for _, p := range tok.Proofs {
		worth += p.Amount
	}
	got, err := s.w.Receive(ctx, text, lockKey(s.seed))
	if err != nil {
		return s.receiveFailed(err, worth)
	}
	fmt.Fprintf(e.stdout, "received %d sat (fee %d sat)\n", got, worth-got)
	s.printBalance()
	return exitOK
}

// ownToken checks that a token is of the wallet's mint and unit, and
// spells its mint as the wallet does.
func (s *walletSession) ownToken(tok *payment.Token, text string) (string, error) {
	m := strings.TrimRight(tok.Mint, "/")
	if m != s.w.MintURL() {
		return "", fmt.Errorf("the token is ecash of the mint %q, and this wallet keeps ecash of %s", printable(tok.Mint), s.w.MintURL())
	}
	if tok.Unit != walletUnit {
		return "", fmt.Errorf("the token is in %q, and this wallet keeps %s", printable(tok.Unit), walletUnit)
	}
	if tok.Mint == m {
		return text, nil
	}
	tok.Mint = m
	return tok.EncodeV4()
}

func (s *walletSession) receiveFailed(err error, worth uint64) int {
	var refused *wallet.MintError
	switch {
	case errors.Is(err, wallet.ErrInsufficient):
		return s.fail("the token is worth %d sat, no more than the mint's fee for redeeming it", worth)
	case errors.As(err, &refused) && refused.Code == 11001:
		return s.fail("the token was already spent (the mint refused it: code 11001)")
	case errors.As(err, &refused) && refused.Code == 30001:
		return s.fail("%s; the token is locked to a key this wallet does not hold (see obol wallet pubkey)", s.describe(err))
	}
	return s.failErr(err)
}

// walletWithdraw is `obol wallet withdraw INVOICE`.
func walletWithdraw(ctx context.Context, o walletOptions, args []string, e env) int {
	fs := walletFlagSet("withdraw", "INVOICE", &o, e.stderr)
	pos, code, ok := parseWalletArgs(fs, args, "INVOICE")
	if !ok {
		return code
	}
	invoice := strings.TrimSpace(pos[0])
	if !strings.HasPrefix(strings.ToLower(invoice), "ln") || len(invoice) > 8192 || strings.ContainsAny(invoice, " \t\n") {
		return argError(fs, "INVOICE", printable(invoice), "want a bolt11 invoice (lnbc…)")
	}
	s, code, ok := openWallet(ctx, o, fs, e, walletOnline)
	if !ok {
		return code
	}
	defer s.close()
	before := s.w.Balance()
	q, err := s.w.Withdraw(ctx, invoice)
	if errors.Is(err, wallet.ErrInsufficient) {
		return s.fail("insufficient balance: the wallet holds %d sat, less than the invoice and its fees", before)
	}
	if err != nil {
		return s.failErr(err)
	}
	after := s.w.Balance()
	fmt.Fprintf(e.stdout, "paid %d sat (fee %d sat)\n", q.Amount, before-after-min(q.Amount, before-after))
	s.printBalance()
	return exitOK
}
