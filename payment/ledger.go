package payment

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
)

// LedgerConfig configures a relay's Ledger.
type LedgerConfig struct {
	// ReceiverKey is the relay's Cashu receiver key (its public key is in
	// the relay descriptor).
	ReceiverKey *btcec.PrivateKey
	// Keyset returns the keyset the relay accepts for a mint, unit and
	// keyset id, or an error if it does not accept them.
	Keyset func(mint, unit, keysetID string) (Keyset, error)
	// MinLifetime is the least time a new channel must have before its
	// expiry (default 1 h); MaxLifetime the most (default 7 days).
	MinLifetime, MaxLifetime time.Duration
	// CloseMargin: no update is accepted this close to a channel's expiry,
	// so that the relay can still close it (default 10 min).
	CloseMargin time.Duration
	// MaxCapacity bounds a channel's capacity in its unit (0: no bound).
	MaxCapacity uint64
	// MaxChannels bounds the channels held (default 100000).
	MaxChannels int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Store, if set, persists every change before it is acknowledged.
	Store LedgerStore
}

func (c *LedgerConfig) setDefaults() {
	if c.MinLifetime == 0 {
		c.MinLifetime = time.Hour
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 7 * 24 * time.Hour
	}
	if c.CloseMargin == 0 {
		c.CloseMargin = 10 * time.Minute
	}
	if c.MaxChannels == 0 {
		c.MaxChannels = 100000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the configuration after defaults are applied.
func (c *LedgerConfig) Validate() error {
	switch {
	case c.ReceiverKey == nil:
		return errors.New("payment: ledger needs a receiver key")
	case c.Keyset == nil:
		return errors.New("payment: ledger needs a keyset policy")
	case c.MinLifetime <= c.CloseMargin || c.MaxLifetime < c.MinLifetime:
		return errors.New("payment: ledger lifetimes must satisfy close margin < min <= max")
	}
	return nil
}

// Ledger is a relay's record of the channels paying it. It verifies opens
// and balance updates locally and keeps, per channel, the highest balance
// and its signature.
//
//	            Open (verified)          Update: held < balance <= capacity,
//	(unknown) ─────────────────► OPEN ◄─┐        signature valid
//	                              │  └──┘
//	        MarkClosed, or expiry │
//	        minus CloseMargin     ▼
//	                            CLOSED ── Prune after expiry ──► (forgotten)
//
// A closed channel is remembered until it expires, so that its id cannot
// be opened again. Ledger is safe for concurrent use; signature checks run
// outside its lock.
type Ledger struct {
	cfg LedgerConfig

	mu       sync.Mutex // guards channels and every entry's fields
	channels map[ChannelID]*entry
}

type entry struct {
	ch      *Channel
	balance uint64
	sig     [SignatureSize]byte
	closed  bool
	settled bool
}

// ChannelState is a summary of one channel a ledger holds.
type ChannelState struct {
	ID      ChannelID
	Balance uint64 // accepted balance, in the channel's unit
	Expiry  uint64 // Unix seconds
	Closed  bool   // takes no more updates (MarkClosed)
	Settled bool   // the relay's close is done (MarkSettled)
}

// Channels lists the channels held, in no particular order.
func (l *Ledger) Channels() []ChannelState {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ChannelState, 0, len(l.channels))
	for id, e := range l.channels {
		out = append(out, ChannelState{ID: id, Balance: e.balance, Expiry: e.ch.params.ExpiryTime,
			Closed: e.closed, Settled: e.settled})
	}
	return out
}

// MarkSettled records that a closed channel needs nothing more from the
// relay: its close went through at the mint, or cannot (the funding was
// spent, or nothing was paid).
func (l *Ledger) MarkSettled(id ChannelID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.channels[id]
	if !ok {
		return ErrUnknownChannel
	}
	if err := l.persist(func() LedgerRecord { return LedgerRecord{Channel: id, Closed: true, Settled: true} }); err != nil {
		return err
	}
	e.closed, e.settled = true, true
	return nil
}

// NewLedger returns an empty ledger.
func NewLedger(cfg LedgerConfig) (*Ledger, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Ledger{cfg: cfg, channels: make(map[ChannelID]*entry)}, nil
}

// Open verifies a CHANNEL_OPEN against the relay's policy and records the
// channel at balance zero.
func (l *Ledger) Open(m *ChannelOpen) (ChannelID, error) {
	p := m.Params
	now := uint64(l.cfg.Now().Unix())
	switch {
	case p.ExpiryTime < now+uint64(l.cfg.MinLifetime/time.Second):
		return ChannelID{}, fmt.Errorf("%w: expiry too soon", ErrPolicy)
	case p.ExpiryTime > now+uint64(l.cfg.MaxLifetime/time.Second):
		return ChannelID{}, fmt.Errorf("%w: expiry too far", ErrPolicy)
	case l.cfg.MaxCapacity != 0 && p.Capacity > l.cfg.MaxCapacity:
		return ChannelID{}, fmt.Errorf("%w: capacity too large", ErrPolicy)
	}
	ks, err := l.cfg.Keyset(p.Mint, p.Unit, p.KeysetID)
	if err != nil {
		return ChannelID{}, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if l.full() {
		return ChannelID{}, ErrBusy
	}
	ch, err := OpenChannel(m, l.cfg.ReceiverKey, ks)
	if err != nil {
		return ChannelID{}, err
	}
	raw, err := m.MarshalBinary()
	if err != nil {
		return ChannelID{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.channels[ch.ID()]; ok {
		if e.closed {
			return ChannelID{}, ErrChannelClosed
		}
		return ChannelID{}, ErrDuplicate
	}
	if len(l.channels) >= l.cfg.MaxChannels {
		return ChannelID{}, ErrBusy
	}
	if err := l.persist(func() LedgerRecord { return LedgerRecord{Channel: ch.ID(), Open: raw} }); err != nil {
		return ChannelID{}, err
	}
	l.channels[ch.ID()] = &entry{ch: ch, sig: m.ZeroSig}
	return ch.ID(), nil
}

func (l *Ledger) full() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.channels) >= l.cfg.MaxChannels
}

// Update verifies a balance update and records it. It returns by how much
// the balance grew.
func (l *Ledger) Update(u *BalanceUpdate) (uint64, error) {
	ch, err := l.precheck(u)
	if err != nil {
		return 0, err
	}
	if err := ch.VerifyBalance(u.Balance, u.Sig); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.channels[u.Channel]
	if err := l.admissible(e, u.Balance); err != nil { // it may have moved meanwhile
		return 0, err
	}
	if err := l.persist(func() LedgerRecord {
		return LedgerRecord{Channel: u.Channel, Balance: u.Balance, Sig: u.Sig[:]}
	}); err != nil {
		return 0, err
	}
	delta := u.Balance - e.balance
	e.balance, e.sig = u.Balance, u.Sig
	return delta, nil
}

func (l *Ledger) precheck(u *BalanceUpdate) (*Channel, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.channels[u.Channel]
	if err := l.admissible(e, u.Balance); err != nil {
		return nil, err
	}
	return e.ch, nil
}

// admissible checks a balance against a channel's state; l.mu is held.
func (l *Ledger) admissible(e *entry, balance uint64) error {
	switch {
	case e == nil:
		return ErrUnknownChannel
	case e.closed || uint64(l.cfg.Now().Add(l.cfg.CloseMargin).Unix()) >= e.ch.params.ExpiryTime:
		return ErrChannelClosed
	case balance > e.ch.params.Capacity:
		return ErrOverCapacity
	case balance == e.balance:
		return ErrReplay
	case balance < e.balance:
		return ErrDecreasing
	}
	return nil
}

// Balance returns a channel's accepted balance and its signature.
func (l *Ledger) Balance(id ChannelID) (uint64, [SignatureSize]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.channels[id]
	if !ok {
		return 0, [SignatureSize]byte{}, false
	}
	return e.balance, e.sig, true
}

// Channel returns an open or closed channel.
func (l *Ledger) Channel(id ChannelID) (*Channel, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.channels[id]
	if !ok {
		return nil, false
	}
	return e.ch, true
}

// MarkClosed stops a channel from taking updates (the relay is settling
// it) and returns the balance and signature to close with.
func (l *Ledger) MarkClosed(id ChannelID) (uint64, [SignatureSize]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.channels[id]
	if !ok {
		return 0, [SignatureSize]byte{}, ErrUnknownChannel
	}
	if err := l.persist(func() LedgerRecord { return LedgerRecord{Channel: id, Closed: true} }); err != nil {
		return 0, [SignatureSize]byte{}, err
	}
	e.closed = true
	return e.balance, e.sig, nil
}

// persist appends a record to the store, if any; l.mu is held.
func (l *Ledger) persist(rec func() LedgerRecord) error {
	if l.cfg.Store == nil {
		return nil
	}
	if err := l.cfg.Store.Append(rec()); err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	return nil
}

// Prune forgets channels whose expiry has passed, returning their ids (an
// open one among them was never settled: its funds went back to the
// sender).
func (l *Ledger) Prune() []ChannelID {
	now := uint64(l.cfg.Now().Unix())
	l.mu.Lock()
	defer l.mu.Unlock()
	var gone []ChannelID
	for id, e := range l.channels {
		if now >= e.ch.params.ExpiryTime {
			delete(l.channels, id)
			gone = append(gone, id)
		}
	}
	return gone
}

// Handle decodes one payment message, applies it and returns the encoded
// reply (ACK or ERROR) and the balance increase to credit (0 on error).
func (l *Ledger) Handle(msg []byte) (reply []byte, credit uint64, err error) {
	m, err := DecodeMessage(msg)
	if err != nil {
		return l.reply(ChannelID{}, err), 0, err
	}
	switch m := m.(type) {
	case *ChannelOpen:
		id, err := l.Open(m)
		if err != nil {
			return l.reply(id, err), 0, err
		}
		return mustMarshal(&Ack{Channel: id}), 0, nil
	case *BalanceUpdate:
		credit, err := l.Update(m)
		if err != nil {
			return l.reply(m.Channel, err), 0, err
		}
		return mustMarshal(&Ack{Channel: m.Channel, Balance: m.Balance}), credit, nil
	default:
		err := fmt.Errorf("%w: %d", ErrType, m.Type())
		return l.reply(ChannelID{}, err), 0, err
	}
}

func (l *Ledger) reply(id ChannelID, err error) []byte {
	bal, _, _ := l.Balance(id)
	return mustMarshal(&ErrorReply{Channel: id, Code: CodeOf(err), Balance: bal})
}

func mustMarshal(m Message) []byte {
	b, err := m.MarshalBinary()
	if err != nil {
		panic(err) // replies always encode
	}
	return b
}
