package mint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/internal/journal"
)

// The mint's state is a journal: one JSON record per line, appended and
// synced before the mint answers. Replaying it rebuilds the state; a torn
// last line (a crash mid-write) is dropped.

type record struct {
	// Spent maps proof Ys (hex) to the witness they were spent with.
	Spent map[string]string `json:"spent,omitempty"`
	// Promises maps B_ (hex) to the signature the mint gave it.
	Promises  map[string]payment.BlindSignature `json:"promises,omitempty"`
	MintQuote *payment.MintQuote                `json:"mint_quote,omitempty"`
	MeltQuote *payment.MeltQuote                `json:"melt_quote,omitempty"`
}

type state struct {
	spent      map[string]string
	promises   map[string]payment.BlindSignature
	mintQuotes map[string]*payment.MintQuote
	meltQuotes map[string]*payment.MeltQuote
}

func newState() *state {
	return &state{
		spent:      map[string]string{},
		promises:   map[string]payment.BlindSignature{},
		mintQuotes: map[string]*payment.MintQuote{},
		meltQuotes: map[string]*payment.MeltQuote{},
	}
}

func (s *state) apply(r *record) {
	for y, w := range r.Spent {
		s.spent[y] = w
	}
	for b, sig := range r.Promises {
		s.promises[b] = sig
	}
	if q := r.MintQuote; q != nil {
		c := *q
		s.mintQuotes[q.Quote] = &c
	}
	if q := r.MeltQuote; q != nil {
		c := *q
		s.meltQuotes[q.Quote] = &c
	}
}

func openJournal(dir string, s *state) (*journal.Journal, error) {
	if dir == "" {
		return journal.Memory(), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mint: state dir: %w", err)
	}
	return journal.Open(filepath.Join(dir, "journal.jsonl"), func(line []byte) error {
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return errors.New("corrupt mint record")
		}
		s.apply(&rec)
		return nil
	})
}
