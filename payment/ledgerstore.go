package payment

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// LedgerRecord is one change to a Ledger, as persisted: a channel opened
// (with its CHANNEL_OPEN bytes), a balance accepted (with its signature), or
// a channel closed. Records hold signatures that are worth money: keep the
// store private to the relay.
type LedgerRecord struct {
	Channel ChannelID `json:"channel"`
	Open    []byte    `json:"open,omitempty"`
	Balance uint64    `json:"balance,omitempty"`
	Sig     []byte    `json:"sig,omitempty"`
	Closed  bool      `json:"closed,omitempty"`
}

// LedgerStore persists a ledger's records. Ledger appends a record, and
// waits for Append to return, before it acknowledges the change.
type LedgerStore interface {
	Append(LedgerRecord) error
}

// FileStore is a LedgerStore in an append-only file of JSON lines, synced
// on every append.
type FileStore struct {
	mu sync.Mutex // guards f
	f  *os.File
}

// OpenFileStore opens (or creates) the store at path and returns it with
// the records it holds; a torn last line (a crash mid-write) is dropped.
func OpenFileStore(path string) (*FileStore, []LedgerRecord, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("payment: open ledger store: %w", err)
	}
	recs, good, err := readRecords(f)
	if err == nil {
		err = f.Truncate(good)
	}
	if err == nil {
		_, err = f.Seek(good, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("payment: ledger store: %w", err)
	}
	return &FileStore{f: f}, recs, nil
}

func readRecords(f *os.File) ([]LedgerRecord, int64, error) {
	r := bufio.NewReader(f)
	var recs []LedgerRecord
	var off int64
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return recs, off, nil
		}
		if err != nil {
			return nil, 0, err
		}
		var rec LedgerRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, 0, fmt.Errorf("corrupt record at offset %d", off)
		}
		recs = append(recs, rec)
		off += int64(len(line))
	}
}

// Append implements LedgerStore.
func (s *FileStore) Append(rec LedgerRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("payment: encode ledger record: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("payment: ledger store closed")
	}
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("payment: write ledger record: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("payment: sync ledger store: %w", err)
	}
	return nil
}

// Close closes the file; it is idempotent.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Restore rebuilds the ledger from a store's records, before it is used:
// every open is verified again (without the lifetime policy, which held
// when it was accepted), channels past their expiry are skipped.
func (l *Ledger) Restore(recs []LedgerRecord) error {
	now := uint64(l.cfg.Now().Unix())
	for i, r := range recs {
		switch {
		case r.Open != nil:
			var m ChannelOpen
			if err := m.UnmarshalBinary(r.Open); err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			if m.Params.ExpiryTime <= now {
				continue
			}
			ks, err := l.cfg.Keyset(m.Params.Mint, m.Params.Unit, m.Params.KeysetID)
			if err != nil {
				return fmt.Errorf("record %d: %w: %w", i, ErrPolicy, err)
			}
			ch, err := OpenChannel(&m, l.cfg.ReceiverKey, ks)
			if err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			l.channels[ch.ID()] = &entry{ch: ch, sig: m.ZeroSig}
		default:
			e, ok := l.channels[r.Channel]
			if !ok {
				continue // expired and skipped
			}
			if r.Closed {
				e.closed = true
			}
			if len(r.Sig) == SignatureSize && r.Balance > e.balance {
				e.balance, e.sig = r.Balance, [SignatureSize]byte(r.Sig)
			}
		}
	}
	return nil
}
