package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/obolnet/obol/payment/wallet"
)

// Top-up quotes. A quote is written down before topup waits for its
// invoice, so that an interrupted topup loses nothing: every command that
// opens the wallet claims the quotes paid since, and forgets the ones that
// expired unpaid.

// pendingQuote is a mint quote waiting for its invoice to be paid. Its id
// is what claims the ecash: the file is 0600.
type pendingQuote struct {
	Quote  string `json:"quote"`
	Amount uint64 `json:"amount"`
	Expiry int64  `json:"expiry"`
}

// errStoppedWaiting: topup was interrupted before its invoice was paid.
var errStoppedWaiting = errors.New("stopped waiting; once the invoice is paid, any obol wallet command claims it")

// keepQuote writes a quote down, before its invoice is shown.
func (s *walletSession) keepQuote(q pendingQuote) error {
	return s.updateQuotes(func(qs []pendingQuote) []pendingQuote { return append(qs, q) })
}

// awaitQuote waits until the invoice of a kept quote is paid, then claims
// it.
func (s *walletSession) awaitQuote(ctx context.Context, q pendingQuote) error {
	until := "it is paid"
	if q.Expiry > 0 {
		until = time.Unix(q.Expiry, 0).UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(s.e.stderr, "waiting for the invoice to be paid, until %s (Ctrl-C stops waiting; the quote is kept)\n", until)
	t := time.NewTicker(quotePoll)
	defer t.Stop()
	for {
		done, err := s.settleQuote(ctx, q)
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errStoppedWaiting
		case <-t.C:
		}
	}
}

// claimQuotes settles every written-down quote it can; the others wait.
func (s *walletSession) claimQuotes(ctx context.Context) {
	qs, err := s.readQuotes()
	if err != nil {
		fmt.Fprintf(s.e.stderr, "obol %s: %v\n", s.name, err)
		return
	}
	for _, q := range qs {
		before := s.w.Balance()
		done, err := s.settleQuote(ctx, q)
		switch {
		case err != nil:
			fmt.Fprintf(s.e.stderr, "obol %s: a top-up of %d sat: %s\n", s.name, q.Amount, s.describe(err))
		case done && s.w.Balance() > before:
			fmt.Fprintf(s.e.stderr, "obol %s: claimed a paid top-up of %d sat\n", s.name, q.Amount)
		}
	}
}

// settleQuote claims a quote whose invoice is paid and forgets it; it
// reports whether the quote is done with. A quote that expired unpaid or
// that the mint does not know is forgotten with an error; one the mint
// cannot be asked about waits.
func (s *walletSession) settleQuote(ctx context.Context, q pendingQuote) (bool, error) {
	st, err := s.client.MintQuoteState(ctx, q.Quote)
	var refused *wallet.MintError
	switch {
	case errors.As(err, &refused):
		return true, errors.Join(s.forgetQuote(q.Quote), err)
	case err != nil:
		return false, nil
	case st.State == "PAID":
		if err := s.w.Claim(ctx, q.Quote, q.Amount); err != nil {
			return false, err
		}
	case st.State == "ISSUED": // claimed, and settled by Recover
	case q.Expiry > 0 && s.e.now().Unix() > q.Expiry:
		return true, errors.Join(s.forgetQuote(q.Quote), errors.New("the invoice expired unpaid"))
	default:
		return false, nil
	}
	return true, s.forgetQuote(q.Quote)
}

func (s *walletSession) forgetQuote(id string) error {
	return s.updateQuotes(func(qs []pendingQuote) []pendingQuote {
		return slices.DeleteFunc(qs, func(q pendingQuote) bool { return q.Quote == id })
	})
}

func (s *walletSession) readQuotes() ([]pendingQuote, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, walletQuotesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var qs []pendingQuote
	if err == nil {
		err = json.Unmarshal(b, &qs)
	}
	if err != nil {
		return nil, fmt.Errorf("top-up quotes in %s: %w", s.dir, err)
	}
	return qs, nil
}

func (s *walletSession) updateQuotes(change func([]pendingQuote) []pendingQuote) error {
	qs, err := s.readQuotes()
	if err != nil {
		return err
	}
	b, err := json.Marshal(change(qs))
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, walletQuotesFile), b)
}
