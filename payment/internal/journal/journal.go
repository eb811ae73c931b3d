// Package journal is an append-only file of JSON records, one per line,
// each synced before Append returns. Opening replays the records; a torn
// last line (a crash mid-write) is dropped, a corrupt earlier one is an
// error. The ledger, the wallet and the test mint keep their state in one.
package journal

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Journal appends records to a file. A nil file (Memory) keeps nothing.
type Journal struct {
	mu sync.Mutex // guards f
	f  *os.File
}

// ErrInUse: another process has the journal open.
var ErrInUse = errors.New("journal: in use by another process")

// Memory returns a journal that persists nothing.
func Memory() *Journal { return &Journal{} }

// Open opens or creates the journal at path and calls replay with each
// complete record, in order.
func Open(path string, replay func(line []byte) error) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: open: %w", err)
	}
	if err := lock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	good, err := read(f, replay)
	if err == nil {
		err = f.Truncate(good)
	}
	if err == nil {
		_, err = f.Seek(good, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &Journal{f: f}, nil
}

func read(f *os.File, replay func([]byte) error) (int64, error) {
	r := bufio.NewReader(f)
	var off int64
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return off, nil // an unterminated line is a torn write
		}
		if err != nil {
			return 0, err
		}
		if err := replay(line); err != nil {
			return 0, fmt.Errorf("record at offset %d: %w", off, err)
		}
		off += int64(len(line))
	}
}

// Append writes v as one JSON line and syncs it.
func (j *Journal) Append(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("journal: encode: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal: write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: sync: %w", err)
	}
	return nil
}

// Close closes the file; it is idempotent.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
