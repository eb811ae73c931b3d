package pay

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/wallet"
)

// Default funding delays (ChannelsConfig.FundDelay, FundMaxDelay): the
// last hop of a circuit is funded at most 8 s after its build, well
// within a relay's default grace of 30 s.
const (
	DefaultFundDelay    = time.Second
	DefaultFundMaxDelay = 8 * time.Second
)

// fundSchedule is the funding clock of one circuit's channels: each
// hop's funding time is drawn independently from the same start, the
// moment the circuit's payments begin (its first Open).
type fundSchedule struct {
	once   sync.Once
	start  time.Time
	unpaid atomic.Int32 // hops whose channel is not funded yet
}

func (s *fundSchedule) begin(now time.Time) time.Time {
	s.once.Do(func() { s.start = now })
	return s.start
}

// fundDelay draws a funding delay in [FundDelay, FundMaxDelay].
func (c *Channels) fundDelay() time.Duration {
	lo, hi := c.cfg.FundDelay, c.cfg.FundMaxDelay
	return lo + rand.N(hi-lo+1)
}

// waitFunding waits until a channel's funding time: a random delay after
// its circuit's payments started (s), or after now (s nil), or until
// urgent is closed (the circuit needs the channel now, see hopPayer.Hurry).
// The circuit runs on the relays' free allowance meanwhile.
func (c *Channels) waitFunding(ctx context.Context, s *fundSchedule, urgent <-chan struct{}) error {
	now := c.cfg.Now()
	start := now
	if s != nil {
		start = s.begin(now)
	}
	wait := start.Add(c.fundDelay()).Sub(now)
	select {
	case <-urgent:
		return nil
	default:
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hurried := make(chan bool, 1)
	go func() {
		select {
		case <-urgent:
			hurried <- true
			cancel()
		case <-wctx.Done():
			hurried <- false
		}
	}()
	err := c.cfg.Sleep(wctx, max(wait, 0))
	cancel()
	if <-hurried && ctx.Err() == nil {
		return nil
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fund funds booked channel counter through an isolation of its own, from an exact
// bundle of the pool if there is one; else it splits proofs (counted: the
// pool was too small) and records the capacity so that the pool keeps
// bundles for it.
//
// A funding whose request never reached the mint (wallet.ErrNotSent: no
// circuit to the mint could be built, as right after relays died, before
// the manager has learned which) is tried again after fundRetries, on new
// circuits, before it fails: the circuit it pays for waits, paused at its
// relays' free allowance, rather than being closed at the first miss.
func (c *Channels) fund(ctx context.Context, ch *payment.Channel, counter uint64) error {
	ctx = WithMintOp(ctx, NewMintOp(MintFund))
	defer func() { // settled or left pending for Recover: Settle may take it now
		c.mu.Lock()
		delete(c.funding, counter)
		c.mu.Unlock()
	}()
	c.mu.Lock()
	c.demand[ch.Params().Capacity]++
	c.mu.Unlock()
	err := c.fundOnce(ctx, ch)
	for _, wait := range fundRetries {
		if !errors.Is(err, wallet.ErrNotSent) || c.cfg.Sleep(ctx, wait) != nil {
			break
		}
		err = c.fundOnce(ctx, ch)
	}
	return err
}

// fundRetries are the pauses before a funding whose request never left
// is tried again: 7.5 s in all, well within a relay's grace for a paused
// circuit (specs/05).
var fundRetries = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}

// fundOnce is one try of fund.
func (c *Channels) fundOnce(ctx context.Context, ch *payment.Channel) error {
	err := c.cfg.Wallet.FundExact(ctx, ch)
	if errors.Is(err, wallet.ErrNoBundle) {
		c.mu.Lock()
		c.splits++
		c.mu.Unlock()
	}
	if errors.Is(err, wallet.ErrNoBundle) {
		err = c.cfg.Wallet.Fund(ctx, ch)
	}
	// Proofs held by operations left pending (a swap whose answer was
	// lost) are not spendable until a recovery tells whether the mint
	// spent them: recover them, then try once more.
	if errors.Is(err, wallet.ErrInsufficient) && c.cfg.Wallet.Pending() > 0 {
		if _, rerr := c.cfg.Wallet.RecoverEach(ctx, settleOp); rerr == nil {
			err = c.cfg.Wallet.Fund(ctx, ch)
		}
	}
	return err
}

// Splits is how many fundings found no exact bundle in the pool and split
// proofs on demand.
func (c *Channels) Splits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.splits
}

// demanded lists the capacities funded so far.
func (c *Channels) demanded() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	caps := make([]uint64, 0, len(c.demand))
	for k := range c.demand {
		caps = append(caps, k)
	}
	return caps
}
