package wallet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/internal/journal"
)

// Config configures a Wallet: one mint, one unit.
type Config struct {
	// Mint is the mint's URL.
	Mint string
	// Unit defaults to sat.
	Unit string
	// Seed derives the NUT-13 secrets of every output (at least 16 bytes).
	Seed []byte
	// Dir holds the journal; empty keeps the wallet in memory only.
	Dir string
	// HTTPClient reaches the mint (default http.DefaultClient); plug a
	// circuit's dialer here to reach it anonymously.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Errors.
var (
	ErrInsufficient = errors.New("wallet: insufficient balance")
	ErrNotLoaded    = errors.New("wallet: keyset not loaded (call Load)")
	ErrQuoteUnpaid  = errors.New("wallet: quote not paid yet")
	ErrWrongMint    = errors.New("wallet: token of another mint or unit")
	// ErrNotSent marks the error of a mint request that never left: the
	// connection to the mint could not be opened (a dialer wraps its
	// errors with it). The mint did nothing, so the operation is aborted,
	// its inputs spendable again at once, rather than left pending.
	ErrNotSent = errors.New("wallet: the request never reached the mint")
)

// Wallet holds ecash proofs of one mint and unit, persistently. Every
// operation with the mint is written ahead and settled on Recover after a
// crash, so no proof is lost. Proofs are bearer money: the wallet logs
// nothing. Operations run concurrently: each takes its inputs and outputs
// under the wallet's lock, writes itself ahead as pending (so that no
// other operation spends its inputs) and releases the lock while the
// mint answers.
type Wallet struct {
	cfg    Config
	client *MintClient

	mu       sync.Mutex // guards everything below
	idle     *sync.Cond // on mu: an operation's request ended
	ks       *payment.Keyset
	proofs   map[string]payment.Proof // by secret
	counters map[string]uint32        // NUT-13 counter per keyset
	pending  map[string]*op
	inflight map[string]bool // pending operations whose request is under way
	funded   map[string][]payment.Proof
	history  []HistoryEntry
	jn       *journal.Journal
}

// Open replays the journal in cfg.Dir; it does not contact the mint.
func Open(cfg Config) (*Wallet, error) {
	if cfg.Unit == "" {
		cfg.Unit = "sat"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Seed) < 16 || cfg.Mint == "" {
		return nil, errors.New("wallet: a mint URL and a seed of at least 16 bytes are required")
	}
	w := &Wallet{
		cfg: cfg, client: NewMintClient(cfg.Mint, cfg.HTTPClient),
		proofs: map[string]payment.Proof{}, counters: map[string]uint32{},
		pending: map[string]*op{}, funded: map[string][]payment.Proof{}, inflight: map[string]bool{},
	}
	w.idle = sync.NewCond(&w.mu)
	jn, err := openJournal(cfg.Dir, w.apply)
	if err != nil {
		return nil, err
	}
	w.jn = jn
	return w, nil
}

// Close waits for the requests under way to end, so that their answers
// are journaled, and closes the journal; it is idempotent.
func (w *Wallet) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.inflight) > 0 {
		w.idle.Wait()
	}
	return w.jn.Close()
}

func (w *Wallet) apply(r *record) {
	if r.Begin != nil {
		w.pending[r.Begin.ID] = r.Begin
	}
	for k, v := range r.Counter {
		w.counters[k] = max(w.counters[k], v)
	}
	for _, s := range r.Remove {
		delete(w.proofs, s)
	}
	for _, p := range r.Add {
		w.proofs[p.Secret] = p
	}
	if r.Funded != nil {
		if r.Funded.Proofs == nil {
			delete(w.funded, r.Funded.Channel) // settled
		} else {
			w.funded[r.Funded.Channel] = r.Funded.Proofs
		}
	}
	if r.History != nil {
		w.history = append(w.history, *r.History)
	}
	delete(w.pending, r.Done)
	delete(w.pending, r.Abort)
}

// commit journals and applies a record; w.mu is held.
func (w *Wallet) commit(r *record) error {
	if err := w.jn.Append(r); err != nil {
		return err
	}
	w.apply(r)
	return nil
}

// Load fetches the mint's active keyset for the unit and checks its id.
func (w *Wallet) Load(ctx context.Context) error {
	infos, err := w.client.Keysets(ctx)
	if err != nil {
		return err
	}
	for _, info := range infos {
		if info.Active && info.Unit == w.cfg.Unit {
			ks, err := w.client.Keys(ctx, info)
			if err != nil {
				return err
			}
			w.mu.Lock()
			w.ks = &ks
			w.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("wallet: mint has no active %s keyset", w.cfg.Unit)
}

// Keyset returns the active keyset (after Load).
func (w *Wallet) Keyset() (payment.Keyset, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ks == nil {
		return payment.Keyset{}, ErrNotLoaded
	}
	return *w.ks, nil
}

// MintURL is the mint's URL; Unit the wallet's unit.
func (w *Wallet) MintURL() string { return w.cfg.Mint }
func (w *Wallet) Unit() string    { return w.cfg.Unit }

// Balance is the value of the wallet's proofs.
func (w *Wallet) Balance() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b uint64
	for _, p := range w.proofs {
		b += p.Amount
	}
	return b
}

// History returns the wallet's history, oldest first.
func (w *Wallet) History() []HistoryEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]HistoryEntry(nil), w.history...)
}

// Funded returns the funding proofs of a channel the wallet funded.
func (w *Wallet) Funded(channel payment.ChannelID) []payment.Proof {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.funded[channel.String()]
}

// Pending is the number of operations waiting for Recover.
func (w *Wallet) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// newOutputs makes outputs of the given amounts (0: blank) with NUT-13
// secrets from the next counters, and returns the counter advance to
// journal with them; w.mu is held.
func (w *Wallet) newOutputs(role string, amounts []uint64) ([]output, map[string]uint32, error) {
	ks := w.ks
	c := w.counters[ks.ID]
	outs := make([]output, len(amounts))
	for i, a := range amounts {
		secret, r, err := payment.DeriveSecret(w.cfg.Seed, ks.ID, c)
		if err != nil {
			return nil, nil, err
		}
		c++
		B, err := payment.BlindMessage(secret, r)
		if err != nil {
			return nil, nil, err
		}
		outs[i] = output{Role: role, Amount: a, ID: ks.ID, Secret: secret,
			R: hex.EncodeToString(r.Serialize()), B: hex.EncodeToString(B.SerializeCompressed())}
	}
	return outs, map[string]uint32{ks.ID: c}, nil
}

func blinded(outs []output) []payment.BlindedMessage {
	bms := make([]payment.BlindedMessage, len(outs))
	for i, o := range outs {
		bms[i] = payment.BlindedMessage{Amount: o.Amount, ID: o.ID, B: o.B}
	}
	return bms
}

// unblind turns signatures on outputs into proofs, checking each DLEQ;
// sigs[i] belongs to outs[i].
func (w *Wallet) unblind(outs []output, sigs []payment.BlindSignature) ([]payment.Proof, error) {
	if len(sigs) != len(outs) {
		return nil, fmt.Errorf("wallet: %d signatures for %d outputs", len(sigs), len(outs))
	}
	proofs := make([]payment.Proof, len(outs))
	for i, o := range outs {
		s := sigs[i]
		A, ok := w.ks.Keys[s.Amount]
		if !ok || s.ID != w.ks.ID || (o.Amount != 0 && s.Amount != o.Amount) {
			return nil, fmt.Errorf("wallet: signature %d does not match its output", i)
		}
		B, err := parseHexPoint(o.B)
		if err != nil {
			return nil, err
		}
		if err := payment.VerifyBlindSignatureDLEQ(s, B, A); err != nil {
			return nil, fmt.Errorf("wallet: signature %d: %w", i, err)
		}
		r, _ := hex.DecodeString(o.R)
		rk, _ := btcec.PrivKeyFromBytes(r)
		Cb, _ := parseHexPoint(s.C) // parsed by the DLEQ check
		C := payment.Unblind(Cb, rk, A)
		proofs[i] = payment.Proof{Amount: s.Amount, ID: s.ID, Secret: o.Secret, C: hex.EncodeToString(C.SerializeCompressed()),
			DLEQ: &payment.DLEQProof{E: s.DLEQ.E, S: s.DLEQ.S, R: o.R}}
	}
	return proofs, nil
}

func parseHexPoint(h string) (*btcec.PublicKey, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, errors.New("wallet: bad point")
	}
	return btcec.ParsePubKey(b)
}

func newOpID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fee is the NUT-02 fee for n inputs of the active keyset.
func (w *Wallet) fee(n int) uint64 { return (uint64(n)*w.ks.InputFeePPK + 999) / 1000 }

// selectProofs picks proofs, largest first, worth at least amount plus the
// fee of spending them. It leaves out the inputs of pending operations:
// the mint may have spent them, and only Recover can tell. While the
// free proofs fall short and other operations' requests are under way,
// it waits for them (their change may cover it). w.mu is held.
func (w *Wallet) selectProofs(amount uint64) ([]payment.Proof, uint64, error) {
	for {
		all := w.free()
		var sum uint64
		for i, p := range all {
			sum += p.Amount
			if f := w.fee(i + 1); sum >= amount+f {
				return all[:i+1], sum, nil
			}
		}
		if len(w.inflight) == 0 {
			return nil, 0, ErrInsufficient
		}
		w.idle.Wait()
	}
}

func secretsOf(ps []payment.Proof) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Secret
	}
	return s
}
