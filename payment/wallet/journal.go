package wallet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/internal/journal"
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

// ErrInUse: another process has the wallet open; one at a time.
var ErrInUse = journal.ErrInUse

func openJournal(dir string, apply func(*record)) (*journal.Journal, error) {
	if dir == "" {
		return journal.Memory(), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wallet: dir: %w", err)
	}
	return journal.Open(filepath.Join(dir, "wallet.jsonl"), func(line []byte) error {
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return errors.New("corrupt wallet record")
		}
		apply(&rec)
		return nil
	})
}
