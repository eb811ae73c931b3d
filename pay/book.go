package pay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// bookEntry is one channel the client opened, as persisted before it is
// funded: enough, with the wallet's seed-derived key and funding proofs,
// to rebuild the channel after a crash and settle it.
type bookEntry struct {
	Counter  uint64 `json:"counter"`
	Mint     string `json:"mint,omitempty"`
	Unit     string `json:"unit,omitempty"`
	Capacity uint64 `json:"capacity,omitempty"`
	Funding  uint64 `json:"funding,omitempty"`
	Keyset   string `json:"keyset,omitempty"`
	FeePPK   uint64 `json:"fee_ppk,omitempty"`
	Setup    uint64 `json:"setup,omitempty"`
	Expiry   uint64 `json:"expiry,omitempty"`
	Receiver string `json:"receiver,omitempty"` // hex, compressed
	Settled  bool   `json:"settled,omitempty"`
	// Standby: funded in advance for a hidden service's rendezvous
	// circuits, not on any circuit yet. A later entry of the counter
	// with Opened set says it was taken for a circuit: its relay may
	// have seen it, so a restart does not offer it again.
	Standby bool `json:"standby,omitempty"`
	Opened  bool `json:"opened,omitempty"`
}

// book is an append-only, synced file of bookEntry lines; a torn last line
// (a crash mid-write) is dropped on open.
type book struct {
	f *os.File // nil: in memory only
}

func openBook(dir string) (*book, []bookEntry, error) {
	if dir == "" {
		return &book{}, nil, nil
	}
	path := filepath.Join(dir, "channels.jsonl")
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("pay: read book: %w", err)
	}
	var entries []bookEntry
	good := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e bookEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			break // torn tail
		}
		entries = append(entries, e)
		good += len(sc.Bytes()) + 1
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("pay: open book: %w", err)
	}
	if err := f.Truncate(int64(min(good, len(data)))); err != nil {
		f.Close()
		return nil, nil, err
	}
	if _, err := f.Seek(0, 2); err != nil {
		f.Close()
		return nil, nil, err
	}
	return &book{f: f}, entries, nil
}

func (b *book) append(e bookEntry) error {
	if b.f == nil {
		return nil
	}
	line, _ := json.Marshal(e)
	if _, err := b.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("pay: write book: %w", err)
	}
	if err := b.f.Sync(); err != nil {
		return fmt.Errorf("pay: sync book: %w", err)
	}
	return nil
}

func (b *book) close() error {
	if b.f == nil {
		return nil
	}
	err := b.f.Close()
	b.f = nil
	return err
}
