package wallet

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/obolnet/obol/payment"
)

// The wallet's state is a journal of JSON lines, each synced before the
// wallet goes on. An operation that involves the mint is written ahead
// (begin: its inputs and the secrets and blinding factors of its outputs)
// before the request, and closed (done or abort) after it; an operation
// found open at start is settled by Recover. A torn last line is dropped.

type record struct {
	Begin   *op               `json:"begin,omitempty"`
	Done    string            `json:"done,omitempty"`
	Abort   string            `json:"abort,omitempty"`
	Add     []payment.Proof   `json:"add,omitempty"`
	Remove  []string          `json:"remove,omitempty"` // secrets
	Counter map[string]uint32 `json:"counter,omitempty"`
	Funded  *Funded           `json:"funded,omitempty"`
	History *HistoryEntry     `json:"history,omitempty"`
}

// op is a written-ahead mint operation.
type op struct {
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	Quote   string          `json:"quote,omitempty"`
	Amount  uint64          `json:"amount"`
	Channel string          `json:"channel,omitempty"`
	Inputs  []payment.Proof `json:"inputs,omitempty"`
	Outputs []output        `json:"outputs"`
}

// Output roles: what an output's proof becomes.
const (
	roleKeep = "keep" // the wallet's
	roleSend = "send" // a token handed out
	roleFund = "fund" // a channel's funding
	roleNone = "none" // another party's (a channel close's sender outputs)
)

// output is an output of an operation with what unblinds it. Amount 0 is a
// blank (NUT-08) output whose amount the mint chooses.
type output struct {
	Role   string `json:"role"`
	Amount uint64 `json:"amount"`
	ID     string `json:"id"`
	Secret string `json:"secret"`
	R      string `json:"r"`
	B      string `json:"B_"`
	// Witness, if set, goes with the proof (a channel output locked to the
	// wallet's per-output key, signed in advance).
	Witness string `json:"witness,omitempty"`
}

// Funded is a channel funding the wallet made: the proofs are locked to
// the channel until it settles or they are refunded after its expiry.
type Funded struct {
	Channel string          `json:"channel"`
	Proofs  []payment.Proof `json:"proofs"`
}

// HistoryEntry is one line of the wallet's history. It holds no proof.
type HistoryEntry struct {
	Time   int64  `json:"time"`
	Kind   string `json:"kind"`
	Amount uint64 `json:"amount"`
	Fee    uint64 `json:"fee,omitempty"`
	Note   string `json:"note,omitempty"`
}

type journal struct{ f *os.File }

func openJournal(dir string, apply func(*record)) (*journal, error) {
	if dir == "" {
		return &journal{}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wallet: dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "wallet.jsonl"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wallet: open journal: %w", err)
	}
	good, err := replay(f, apply)
	if err == nil {
		err = f.Truncate(good)
	}
	if err == nil {
		_, err = f.Seek(good, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wallet: journal: %w", err)
	}
	return &journal{f: f}, nil
}

func replay(f *os.File, apply func(*record)) (int64, error) {
	r := bufio.NewReader(f)
	var off int64
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return off, nil
		}
		if err != nil {
			return 0, err
		}
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return 0, fmt.Errorf("corrupt record at offset %d", off)
		}
		apply(&rec)
		off += int64(len(line))
	}
}

func (j *journal) append(r *record) error {
	if j.f == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("wallet: encode record: %w", err)
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("wallet: write journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("wallet: sync journal: %w", err)
	}
	return nil
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
