package circuit

import (
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"sync"
)

// ReplayCache remembers the ephemeral keys of accepted handshakes, one set
// per onion-key period, so a replayed first message is rejected for as long
// as the onion key that could decrypt it is accepted. Sets of retired
// periods are dropped by Retain. It is safe for concurrent use.
//
// Entries are exact 64-bit keyed fingerprints, so a fresh handshake is
// refused only on a fingerprint collision (n/2^64 for n entries) and a
// replay is never accepted. They are kept in sorted runs of uint64 (8 bytes
// an entry, against ~12 in a Go map): new entries go to a small map, which
// is sorted into a run when full; runs are merged so that each is at least
// twice the size of the next, which keeps their number logarithmic.
//
// A period holds at most perPeriod entries. The default is sized so that a
// relay's admission limit cannot fill it: at the router's relay-wide create
// limit (2000/s) a 4-hour key period admits 28.8 million creates, under
// DefaultReplayPerPeriod. Honest load is far below (200 creates/s for a
// 4-hour period is 2.9 million entries, 23 MiB). Only a period whose key is
// accepted for longer than perPeriod/rate fails closed with ErrReplayFull;
// a relay that sees Fill approach 1 should rotate its onion key.
type ReplayCache struct {
	seed      maphash.Seed
	perPeriod int

	mu      sync.Mutex // guards periods
	periods map[uint64]*replaySet
}

// DefaultReplayPerPeriod is the default bound per onion-key period (2^25
// entries, 256 MiB at most; see ReplayCache).
const DefaultReplayPerPeriod = 1 << 25

// replayRecentLen is how many new entries wait in a map before they are
// sorted into a run.
const replayRecentLen = 1 << 14

// replaySet is one period's fingerprints.
type replaySet struct {
	recent map[uint64]struct{}
	runs   [][]uint64 // each sorted; sizes decrease, each at least twice the next
	n      int
}

func (s *replaySet) has(fp uint64) bool {
	if _, ok := s.recent[fp]; ok {
		return true
	}
	for _, r := range s.runs {
		if _, ok := slices.BinarySearch(r, fp); ok {
			return true
		}
	}
	return false
}

func (s *replaySet) add(fp uint64) {
	s.recent[fp] = struct{}{}
	s.n++
	if len(s.recent) >= replayRecentLen {
		s.flush()
	}
}

// flush sorts the recent entries into a run and merges runs of similar size.
func (s *replaySet) flush() {
	run := slices.Sorted(maps.Keys(s.recent))
	clear(s.recent)
	s.runs = append(s.runs, run)
	for k := len(s.runs); k >= 2 && len(s.runs[k-2]) < 2*len(s.runs[k-1]); k = len(s.runs) {
		s.runs = append(s.runs[:k-2], mergeSorted(s.runs[k-2], s.runs[k-1]))
	}
}

// mergeSorted merges two sorted runs of distinct values.
func mergeSorted(a, b []uint64) []uint64 {
	out := make([]uint64, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] < b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// NewReplayCache returns an empty cache with perPeriod entries per period
// (DefaultReplayPerPeriod if perPeriod <= 0).
func NewReplayCache(perPeriod int) *ReplayCache {
	if perPeriod <= 0 {
		perPeriod = DefaultReplayPerPeriod
	}
	return &ReplayCache{
		seed:      maphash.MakeSeed(),
		perPeriod: perPeriod,
		periods:   make(map[uint64]*replaySet),
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
		if set.has(fp) {
			return true
		}
	}
	return false
}

// Add records ephemeral under period. It returns ErrReplay if it was already
// accepted in any period and ErrReplayFull if the period's set is full.
func (c *ReplayCache) Add(period uint64, ephemeral []byte) error {
	fp := c.fingerprint(ephemeral)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.periods {
		if s.has(fp) {
			return ErrReplay
		}
	}
	set := c.periods[period]
	if set == nil {
		set = &replaySet{recent: make(map[uint64]struct{})}
		c.periods[period] = set
	}
	if set.n >= c.perPeriod {
		return fmt.Errorf("period %d: %w", period, ErrReplayFull)
	}
	set.add(fp)
	return nil
}

// Retain drops the sets of every period not listed.
func (c *ReplayCache) Retain(periods ...uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.periods {
		if !slices.Contains(periods, p) {
			delete(c.periods, p)
		}
	}
}

// Len returns the number of entries held for period.
func (c *ReplayCache) Len(period uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.periods[period]; s != nil {
		return s.n
	}
	return 0
}

// Fill returns how full period's set is, from 0 to 1.
func (c *ReplayCache) Fill(period uint64) float64 {
	return float64(c.Len(period)) / float64(c.perPeriod)
}
