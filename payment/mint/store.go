package mint

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/obolnet/obol/payment"
)

// The mint's state is a journal: one JSON record per line, appended and
// synced before the mint answers. Replaying it rebuilds the state; a torn
// last line (a crash mid-write) is dropped.

type record struct {
	// Spent maps proof Ys (hex) to the witness they were spent with.
	Spent map[string]string `json:"spent,omitempty"`
	// Promises maps B_ (hex) to the signature the mint gave it.
	Promises  map[string]payment.BlindSignature `json:"promises,omitempty"`
	MintQuote *MintQuote                        `json:"mint_quote,omitempty"`
	MeltQuote *MeltQuote                        `json:"melt_quote,omitempty"`
}

type state struct {
	spent      map[string]string
	promises   map[string]payment.BlindSignature
	mintQuotes map[string]*MintQuote
	meltQuotes map[string]*MeltQuote
}

func newState() *state {
	return &state{
		spent:      map[string]string{},
		promises:   map[string]payment.BlindSignature{},
		mintQuotes: map[string]*MintQuote{},
		meltQuotes: map[string]*MeltQuote{},
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

// journal appends records to a file; nil file means memory only.
type journal struct {
	f *os.File
}

func openJournal(dir string, s *state) (*journal, error) {
	if dir == "" {
		return &journal{}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mint: state dir: %w", err)
	}
	path := filepath.Join(dir, "journal.jsonl")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("mint: open journal: %w", err)
	}
	good, err := replay(f, s)
	if err != nil {
		f.Close()
		return nil, err
	}
	// Drop a torn tail, then append after the last good record.
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("mint: truncate journal: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("mint: seek journal: %w", err)
	}
	return &journal{f: f}, nil
}

// replay applies every complete record and returns the offset after the
// last one.
func replay(f *os.File, s *state) (int64, error) {
	r := bufio.NewReader(f)
	var off int64
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return off, nil // an unterminated line is a torn write
		}
		if err != nil {
			return 0, fmt.Errorf("mint: read journal: %w", err)
		}
		var rec record
		if err := json.Unmarshal(bytes.TrimSpace(line), &rec); err != nil {
			return 0, fmt.Errorf("mint: journal record at offset %d is corrupt", off)
		}
		s.apply(&rec)
		off += int64(len(line))
	}
}

func (j *journal) append(r *record) error {
	if j.f == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("mint: encode record: %w", err)
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("mint: write journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("mint: sync journal: %w", err)
	}
	return nil
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	return j.f.Close()
}
