package payment

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/obolnet/obol/payment/internal/journal"
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
	Settled bool      `json:"settled,omitempty"`
}

// LedgerStore persists a ledger's records. Ledger appends a record, and
// waits for Append to return, before it acknowledges the change.
type LedgerStore interface {
	Append(LedgerRecord) error
}

// FileStore is a LedgerStore in an append-only file of JSON lines, synced
// on every append.
type FileStore struct {
	j *journal.Journal
}

// OpenFileStore opens (or creates) the store at path and returns it with
// the records it holds; a torn last line (a crash mid-write) is dropped.
func OpenFileStore(path string) (*FileStore, []LedgerRecord, error) {
	var recs []LedgerRecord
	j, err := journal.Open(path, func(line []byte) error {
		var r LedgerRecord
		if err := json.Unmarshal(line, &r); err != nil {
			return errors.New("corrupt ledger record")
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("payment: ledger store: %w", err)
	}
	return &FileStore{j: j}, recs, nil
}

// Append implements LedgerStore.
func (s *FileStore) Append(rec LedgerRecord) error { return s.j.Append(rec) }

// Close closes the file; it is idempotent.
func (s *FileStore) Close() error { return s.j.Close() }

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
			if r.Settled {
				e.settled = true
			}
			if len(r.Sig) == SignatureSize && r.Balance > e.balance {
				e.balance, e.sig = r.Balance, [SignatureSize]byte(r.Sig)
			}
		}
	}
	return nil
}
