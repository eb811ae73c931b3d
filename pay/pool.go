package pay

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/wallet"
)

// PoolConfig configures the pool of proofs in standard denominations
// that funds channels: with it, a funding is one swap of exactly the
// funding's value, never a split made when a circuit needs a channel.
type PoolConfig struct {
	// Bundles is how many fundings of each capacity the pool keeps ready
	// (default 4).
	Bundles int
	// Capacities are kept ready from the start; the capacities of
	// channels funded since are kept ready too.
	Capacities []uint64
	// Every is the mean time between two fills (default 10 min). Fills
	// come at exponentially distributed intervals — a Poisson process,
	// unrelated to circuit builds and fundings — the first one within
	// Every/4 of Run's start.
	Every time.Duration
}

// Pool defaults.
const (
	DefaultPoolBundles = 4
	DefaultPoolEvery   = 10 * time.Minute
)

func (c *PoolConfig) defaults() {
	if c.Bundles <= 0 {
		c.Bundles = DefaultPoolBundles
	}
	if c.Every <= 0 {
		c.Every = DefaultPoolEvery
	}
}

// fundingAmount is what a channel of capacity is funded with.
func fundingAmount(capacity uint64, ks payment.Keyset) (uint64, error) {
	return payment.FundingAmountFor(capacity, ks, 0, 4*capacity+64)
}

// FillPool makes sure the wallet holds, for each capacity (and each one
// funded before), bundles exact fundings of it, in one swap (a split,
// through an isolation of its own) that makes the denominations missing.
// If the wallet cannot cover them all, it prepares as many as it can,
// smaller capacities first. It returns how many fundings the pool now
// holds ready; it calls the mint only if some were missing.
func (c *Channels) FillPool(ctx context.Context, bundles int, capacities []uint64) (int, error) {
	ks, err := c.cfg.Wallet.Keyset()
	if err != nil {
		return 0, err
	}
	caps := append(slices.Clone(capacities), c.demanded()...)
	slices.Sort(caps)
	caps = slices.Compact(caps)
	// Bundles in the order they are given up when money is short: one
	// of each capacity, smallest first, then a second of each, ...
	var want [][]uint64
	for range bundles {
		for _, cp := range caps {
			f, err := fundingAmount(cp, ks)
			if err != nil {
				return 0, err
			}
			b, err := c.cfg.Wallet.Bundle(f)
			if err != nil {
				return 0, err
			}
			if b != nil {
				want = append(want, b)
			}
		}
	}
	have := c.cfg.Wallet.Denominations()
	for n := len(want); n > 0; n-- {
		need := map[uint64]int{}
		for _, b := range want[:n] {
			for _, a := range b {
				need[a]++
			}
		}
		var missing []uint64
		keep := map[uint64]int{}
		for a, k := range need {
			keep[a] = min(k, have[a])
			for range k - keep[a] {
				missing = append(missing, a)
			}
		}
		if len(missing) == 0 {
			return n, nil
		}
		slices.Sort(missing)
		err := c.cfg.Wallet.Split(WithMintOp(ctx, NewMintOp(MintPool)), missing, keep)
		if errors.Is(err, wallet.ErrInsufficient) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
	return 0, nil
}

// poolGap draws the time to the next fill: exponential with mean every.
func poolGap(every time.Duration) time.Duration {
	return time.Duration(rand.ExpFloat64() * float64(every))
}

// runPool fills the pool at the times of a Poisson process of mean gap
// cfg.Every until ctx ends.
func (c *Channels) runPool(ctx context.Context, cfg PoolConfig, failed func(error)) {
	wait := rand.N(cfg.Every/4 + 1)
	for {
		if sleep(ctx, wait) != nil {
			return
		}
		if _, err := c.FillPool(ctx, cfg.Bundles, cfg.Capacities); err != nil && ctx.Err() == nil {
			failed(err)
		}
		wait = poolGap(cfg.Every)
	}
}
