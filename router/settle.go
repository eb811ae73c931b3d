package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/wallet"
)

// SettlerConfig configures a Settler.
type SettlerConfig struct {
	// Ledger holds the channels to settle; Wallet closes them at the mint
	// (its journal makes each close crash-safe); ReceiverKey is the
	// relay's Cashu key. Required.
	Ledger      *payment.Ledger
	Wallet      *wallet.Wallet
	ReceiverKey *btcec.PrivateKey
	// Ended reports channels whose circuits have closed (PaidMeter.Ended);
	// nil: channels are closed only for their expiry.
	Ended func() []payment.ChannelID
	// Delay is the least, MaxDelay the most time between a circuit's end
	// and its channel's close, drawn at random (defaults 1 and 10 min),
	// so that a close does not tell the mint when a circuit ended.
	Delay, MaxDelay time.Duration
	// CloseBefore: every channel still open this long before its expiry
	// is closed (default 2 h; more than the ledger's CloseMargin).
	CloseBefore time.Duration
	// Backoff is the first wait after the mint failed, doubling up to
	// MaxBackoff (defaults 5 s and 10 min).
	Backoff, MaxBackoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnSettled, if set, is told of every channel settled.
	OnSettled func(Settlement)
	Logger    *slog.Logger
}

func (c *SettlerConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Delay, time.Minute)
	def(&c.MaxDelay, 10*time.Minute)
	def(&c.CloseBefore, 2*time.Hour)
	def(&c.Backoff, 5*time.Second)
	def(&c.MaxBackoff, 10*time.Minute)
	c.MaxDelay = max(c.MaxDelay, c.Delay)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Outcome is how a channel was settled.
type Outcome int

// Outcomes.
const (
	// SettledClosed: the relay's close went through; Amount is its share.
	SettledClosed Outcome = iota + 1
	// SettledUnpaid: nothing was paid on the channel; nothing to close.
	SettledUnpaid
	// SettledSpent: the funding was already spent — by the sender (a
	// double spend or a refund) or by an earlier close of this relay that
	// a crash interrupted and the wallet recovered.
	SettledSpent
	// SettledRefused: the mint refused the close for another reason.
	SettledRefused
)

// Settlement is one channel settled.
type Settlement struct {
	Channel payment.ChannelID
	Outcome Outcome
	Amount  uint64 // the relay's share, in the channel's unit
	Err     error  // the mint's refusal (SettledSpent, SettledRefused)
}

// Settler closes the channels a relay was paid on: those of ended circuits
// after a random delay, every channel well before its expiry, in batches,
// retrying with back-off while the mint is away. It needs no mint contact
// for payments, only here.
type Settler struct {
	cfg SettlerConfig

	// Run's goroutine owns the fields below.
	due      map[payment.ChannelID]time.Time
	restored []payment.ChannelID // open at NewSettler, not yet in due
	backoff  time.Duration
}

// NewSettler returns a settler; call Run. Make it before the relay takes
// circuits: the channels open in the ledger then were restored from an
// earlier run, whose circuits have all ended, and are closed after the
// random delay as those Ended reports.
func NewSettler(cfg SettlerConfig) (*Settler, error) {
	if cfg.Ledger == nil || cfg.Wallet == nil || cfg.ReceiverKey == nil {
		return nil, errors.New("router: settler needs a ledger, a wallet and the receiver key")
	}
	cfg.defaults()
	s := &Settler{cfg: cfg, due: map[payment.ChannelID]time.Time{}}
	for _, c := range cfg.Ledger.Channels() {
		if !c.Settled && !c.Closed {
			s.restored = append(s.restored, c.ID)
		}
	}
	return s, nil
}

// Run settles until ctx ends. It first finishes, through the wallet's
// journal, any close a crash interrupted.
func (s *Settler) Run(ctx context.Context) error {
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if err := s.Batch(ctx); err != nil {
			s.backoff = min(max(2*s.backoff, s.cfg.Backoff), s.cfg.MaxBackoff)
			// The mint's own words may quote what was sent (proofs):
			// only at debug level.
			s.cfg.Logger.Info("settlement postponed", "retry", s.backoff)
			s.cfg.Logger.Debug("settlement postponed", "err", err)
			wait = s.backoff
			continue
		}
		s.backoff = 0
		wait = jitter(s.cfg.Delay / 2)
	}
}

// jitter is a random duration in [d/2, 3d/2).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d+1)
}

// Batch settles every channel now due; Run calls it at random intervals.
// An error means the mint could not be reached: try again later.
func (s *Settler) Batch(ctx context.Context) error {
	if _, err := s.cfg.Wallet.Recover(ctx); err != nil {
		return fmt.Errorf("router: settle: wallet recovery: %w", err)
	}
	now := s.cfg.Now()
	ended := s.restored
	s.restored = nil
	if s.cfg.Ended != nil {
		ended = append(ended, s.cfg.Ended()...)
	}
	for _, id := range ended {
		d := s.cfg.Delay + rand.N(s.cfg.MaxDelay-s.cfg.Delay+1)
		s.due[id] = now.Add(d)
	}
	for _, c := range s.cfg.Ledger.Channels() {
		if c.Settled || !s.isDue(c, now) {
			continue
		}
		if err := s.settle(ctx, c); err != nil {
			return err
		}
		delete(s.due, c.ID)
	}
	if gone := s.cfg.Ledger.Prune(); len(gone) > 0 {
		s.cfg.Logger.Debug("expired channels forgotten", "count", len(gone))
	}
	return nil
}

// Flush settles every channel not yet settled, at once: for a relay
// shutting down, whose circuits — and so channels — have all ended. Call
// it after Run has returned. An error means the mint could not be
// reached; the channels stay in the ledger for the next start.
func (s *Settler) Flush(ctx context.Context) error {
	if _, err := s.cfg.Wallet.Recover(ctx); err != nil {
		return fmt.Errorf("router: settle: wallet recovery: %w", err)
	}
	for _, c := range s.cfg.Ledger.Channels() {
		if c.Settled {
			continue
		}
		if err := s.settle(ctx, c); err != nil {
			return err
		}
		delete(s.due, c.ID)
	}
	return nil
}

func (s *Settler) isDue(c payment.ChannelState, now time.Time) bool {
	if c.Closed { // closed before a crash, or a close to retry
		return true
	}
	if t, ok := s.due[c.ID]; ok && !now.Before(t) {
		return true
	}
	return uint64(now.Add(s.cfg.CloseBefore).Unix()) >= c.Expiry
}

// settle closes one channel: the ledger stops taking its updates first,
// then the wallet closes it at the mint.
func (s *Settler) settle(ctx context.Context, c payment.ChannelState) error {
	l := s.cfg.Ledger
	balance, sig, err := l.MarkClosed(c.ID)
	if err != nil {
		return err
	}
	res := Settlement{Channel: c.ID}
	if balance == 0 {
		res.Outcome = SettledUnpaid
	} else {
		ch, _ := l.Channel(c.ID)
		res.Amount, err = s.cfg.Wallet.CloseChannel(ctx, ch, s.cfg.ReceiverKey, balance, sig)
		var refused *wallet.MintError
		switch {
		case err == nil:
			res.Outcome = SettledClosed
		case errors.As(err, &refused) && refused.Code == codeSpent:
			res.Outcome, res.Err = SettledSpent, err
		case errors.As(err, &refused):
			res.Outcome, res.Err = SettledRefused, err
		default:
			return err // unreachable or unknown: the wallet recovers it
		}
	}
	if err := l.MarkSettled(c.ID); err != nil {
		return err
	}
	if res.Outcome != SettledClosed {
		s.cfg.Logger.Info("channel settled without a close", "outcome", int(res.Outcome))
	}
	if s.cfg.OnSettled != nil {
		s.cfg.OnSettled(res)
	}
	return nil
}

// codeSpent is NUT-00's "proofs already spent".
const codeSpent = 11001
