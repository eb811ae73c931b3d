package circuit

import (
	"fmt"
	"hash/maphash"
	"sync"
)

// ReplayCache remembers the ephemeral keys of accepted handshakes, one set
// per onion-key period, so a replayed first message is rejected for as long
// as the onion key that could decrypt it is accepted. Each set holds at most
// perPeriod entries (8-byte keyed fingerprints; ~10–12 bytes each in a Go
// map, so 1<<20 entries cost about 12 MiB); when a set is full the cache
// fails closed with ErrReplayFull. Sets of retired periods are dropped by
// Retain. It is safe for concurrent use.
type ReplayCache struct {
	seed      maphash.Seed
	perPeriod int

	mu      sync.Mutex // guards periods
	periods map[uint64]map[uint64]struct{}
}

// DefaultReplayPerPeriod is the default bound per onion-key period: a relay
// accepting 100 creates/s for a one-hour period needs 360,000 entries.
const DefaultReplayPerPeriod = 1 << 20

// NewReplayCache returns an empty cache with perPeriod entries per period
// (DefaultReplayPerPeriod if perPeriod <= 0).
func NewReplayCache(perPeriod int) *ReplayCache {
	if perPeriod <= 0 {
		perPeriod = DefaultReplayPerPeriod
	}
	return &ReplayCache{
		seed:      maphash.MakeSeed(),
		perPeriod: perPeriod,
		periods:   make(map[uint64]map[uint64]struct{}),
	}
}

func (c *ReplayCache) fingerprint(ephemeral []byte) uint64 {
	return maphash.Bytes(c.seed, ephemeral)
}

// Seen reports whether ephemeral was already accepted in any period; a
// relay checks it before spending a Diffie-Hellman on the handshake.
func (c *ReplayCache) Seen(ephemeral []byte) bool {
	fp := c.fingerprint(ephemeral)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, set := range c.periods {
		if _, ok := set[fp]; ok {
			return true
		}
	}
	return false
}

// Add records ephemeral under period. It returns ErrReplay if it was already
// there and ErrReplayFull if the period's set is full.
func (c *ReplayCache) Add(period uint64, ephemeral []byte) error {
	fp := c.fingerprint(ephemeral)
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.periods[period]
	if set == nil {
		set = make(map[uint64]struct{})
		c.periods[period] = set
	}
	if _, ok := set[fp]; ok {
		return ErrReplay
	}
	if len(set) >= c.perPeriod {
		return fmt.Errorf("period %d: %w", period, ErrReplayFull)
	}
	set[fp] = struct{}{}
	return nil
}

// Retain drops the sets of every period not listed.
func (c *ReplayCache) Retain(periods ...uint64) {
	keep := make(map[uint64]bool, len(periods))
	for _, p := range periods {
		keep[p] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.periods {
		if !keep[p] {
			delete(c.periods, p)
		}
	}
}

// Len returns the number of entries held for period.
func (c *ReplayCache) Len(period uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.periods[period])
}
