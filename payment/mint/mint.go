package mint

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/internal/journal"
)

// UnitConfig is one unit's keyset.
type UnitConfig struct {
	Unit        string
	InputFeePPK uint64
	// Order: the keyset has amounts 2^0 … 2^(Order-1).
	Order int
}

// Config configures a Mint.
type Config struct {
	// Seed derives the mint's keys (required, at least 16 bytes).
	Seed []byte
	// Dir holds the journal; empty keeps state in memory only.
	Dir string
	// Units default to sat (2^0…2^31) and msat (2^0…2^41), without fees.
	Units []UnitConfig
	// QuoteExpiry is how long quotes are valid (default 1 h).
	QuoteExpiry time.Duration
	// HoldInvoices leaves mint quotes UNPAID until PayMintQuote; by default
	// the fake Lightning backend pays them at once.
	HoldInvoices bool
	// Name is shown in the NUT-06 info.
	Name string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if len(c.Units) == 0 {
		c.Units = []UnitConfig{{Unit: "sat", Order: 32}, {Unit: "msat", Order: 42}}
	}
	if c.QuoteExpiry == 0 {
		c.QuoteExpiry = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Name == "" {
		c.Name = "obol test mint"
	}
}

// Validate checks the configuration after defaults are applied.
func (c *Config) Validate() error {
	if len(c.Seed) < 16 {
		return errors.New("mint: seed of at least 16 bytes required")
	}
	seen := map[string]bool{}
	for _, u := range c.Units {
		if u.Order < 1 || u.Order > 63 || u.InputFeePPK > 999 || seen[u.Unit] || u.Unit == "" {
			return fmt.Errorf("mint: bad unit configuration %q", u.Unit)
		}
		seen[u.Unit] = true
	}
	return nil
}

// Quote states.
const (
	StateUnpaid  = "UNPAID"
	StatePaid    = "PAID"
	StateIssued  = "ISSUED"
	StatePending = "PENDING"
)

// Mint is the test mint. Its methods are the NUT operations without HTTP;
// Handler serves them. It is safe for concurrent use: one lock serialises
// every operation that reads or changes state.
type Mint struct {
	cfg     Config
	ln      *FakeLightning
	keysets map[string]*keyset
	active  map[string]*keyset // by unit
	infoKey *btcec.PublicKey

	mu     sync.Mutex // guards st, jn and fees
	st     *state
	jn     *journal.Journal
	fees   map[string]uint64 // input fees collected since Open, per unit
	closed bool
}

// Open derives the keysets and replays the journal in cfg.Dir.
func Open(cfg Config) (*Mint, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Mint{cfg: cfg, ln: NewFakeLightning(), keysets: map[string]*keyset{}, active: map[string]*keyset{}}
	for _, u := range cfg.Units {
		ks, err := newKeyset(cfg.Seed, u.Unit, 0, u.Order, u.InputFeePPK)
		if err != nil {
			return nil, err
		}
		m.keysets[ks.ID], m.active[u.Unit] = ks, ks
	}
	k, err := deriveKey(cfg.Seed, "info", 0, 0)
	if err != nil {
		return nil, err
	}
	m.infoKey = k.PubKey()
	m.st = newState()
	if m.jn, err = openJournal(cfg.Dir, m.st); err != nil {
		return nil, err
	}
	return m, nil
}

// Close closes the journal; it is idempotent.
func (m *Mint) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	return m.jn.Close()
}

// Lightning is the mint's fake Lightning backend.
func (m *Mint) Lightning() *FakeLightning { return m.ln }

// ActiveKeyset returns the active keyset of a unit (for wallets and relays
// in tests).
func (m *Mint) ActiveKeyset(unit string) (payment.Keyset, bool) {
	ks, ok := m.active[unit]
	if !ok {
		return payment.Keyset{}, false
	}
	return ks.Keyset, true
}

// commit journals a record and applies it; m.mu is held.
func (m *Mint) commit(r *record) error {
	if m.closed {
		return errors.New("mint: closed")
	}
	if err := m.jn.Append(r); err != nil {
		return err
	}
	m.st.apply(r)
	return nil
}

// newQuoteID is a UUID v7: 48 bits of unix milliseconds, then random bits.
func (m *Mint) newQuoteID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mint: quote id: %w", err)
	}
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(m.cfg.Now().UnixMilli()))
	copy(b[:6], ts[2:])
	b[6] = 0x70 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// msatOf converts an amount of a unit to msat.
func msatOf(amount uint64, unit string) (uint64, error) {
	switch unit {
	case "msat":
		return amount, nil
	case "sat":
		if amount > 1<<50 {
			return 0, mintErr(CodeAmountOutOfRange, "amount too large")
		}
		return amount * 1000, nil
	}
	return 0, mintErr(CodeUnitUnsupported, "no Lightning for unit %q", unit)
}
