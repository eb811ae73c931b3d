package circuit

import (
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"sync"
	"time"
)

// ReplayCache remembers the ephemeral keys of accepted handshakes for as
// long as their create could be accepted again. Every create carries the
// client's clock in whole minutes (routing instructions); a relay accepts
// it only within MaxCreateSkew of its own clock, so a replay is refused by
// its time once it is older than that, and the cache needs to hold only
// the creates of the last minutes, whatever the onion keys' lifetimes. It
// keeps one set per create minute and drops a minute's set once the
// relay's clock has left that minute's window. It is safe for concurrent
// use.
//
// Entries are exact 64-bit keyed fingerprints, so a fresh handshake is
// refused only on a fingerprint collision (n/2^64 for n entries) and a
// replay is never accepted. They are kept in sorted runs of uint64 (8 bytes
// an entry, against ~12 in a Go map): new entries go to a small map, which
// is sorted into a run when full; runs are merged so that each is at least
// twice the size of the next, which keeps their number logarithmic.
//
// The cache holds at most max entries. The default is sized so that a
// relay's admission limit cannot fill it: a minute's creates are accepted
// while the relay's clock moves through 2·MaxCreateSkew plus that minute,
// 11 minutes, and the sets of 11 minutes are held at once; at the
// router's relay-wide create limit (2000/s) that is 1.32 million
// creates, under DefaultReplayEntries (16 MiB at most). Honest load is far
// below (200 creates/s is 132,000 entries, 1 MiB). A cache that is full
// fails closed with ErrReplayFull rather than forget an entry.
type ReplayCache struct {
	seed maphash.Seed
	max  int

	mu      sync.Mutex // guards the fields below
	floor   uint32     // the oldest minute still accepted; it only rises
	minutes map[uint32]*replaySet
	n       int // entries in all sets
}

// MaxCreateSkew is how far a create's clock may be from the relay's, either
// way. It matches the skew descriptors allow (descriptor.MaxClockSkew).
const MaxCreateSkew = 5 * time.Minute

// skewMinutes is MaxCreateSkew in whole minutes.
const skewMinutes = uint32(MaxCreateSkew / time.Minute)

// DefaultReplayEntries is the default bound on the replay cache (2^21
// entries, 16 MiB at most; see ReplayCache).
const DefaultReplayEntries = 1 << 21

// minuteOf is t in whole minutes since the Unix epoch, as a create
// carries it (0 before the epoch).
func minuteOf(t time.Time) uint32 {
	return uint32(max(t.Unix(), 0) / 60)
}

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

// NewReplayCache returns an empty cache of at most max entries
// (DefaultReplayEntries if max <= 0).
func NewReplayCache(max int) *ReplayCache {
	if max <= 0 {
		max = DefaultReplayEntries
	}
	return &ReplayCache{seed: maphash.MakeSeed(), max: max, minutes: make(map[uint32]*replaySet)}
}

func (c *ReplayCache) fingerprint(ephemeral []byte) uint64 {
	return maphash.Bytes(c.seed, ephemeral)
}

// Seen reports whether ephemeral was accepted within the window at now; a
// relay checks it before spending a Diffie-Hellman on the handshake.
func (c *ReplayCache) Seen(now time.Time, ephemeral []byte) bool {
	fp := c.fingerprint(ephemeral)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(minuteOf(now))
	return c.has(fp)
}

// advance moves the window's start to cur - skewMinutes, if that is later,
// and drops the sets of the minutes it left.
func (c *ReplayCache) advance(cur uint32) {
	if cur < skewMinutes || cur-skewMinutes <= c.floor {
		return
	}
	c.floor = cur - skewMinutes
	for m, set := range c.minutes {
		if m < c.floor {
			c.n -= set.n
			delete(c.minutes, m)
		}
	}
}

func (c *ReplayCache) has(fp uint64) bool {
	for _, set := range c.minutes {
		if set.has(fp) {
			return true
		}
	}
	return false
}

// Add records ephemeral, from a create made at minute by the client's
// clock, at the relay's time now. It returns ErrClockSkew if minute is
// outside the window the cache covers at now, ErrReplay if ephemeral was
// already accepted and ErrReplayFull if the cache is full.
//
// The window is minuteOf(now) ± MaxCreateSkew, except that its start never
// moves back: a minute once dropped stays refused even if the relay's
// clock is set back, since the creates it held could otherwise be
// replayed.
func (c *ReplayCache) Add(minute uint32, now time.Time, ephemeral []byte) error {
	fp := c.fingerprint(ephemeral)
	cur := minuteOf(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(cur)
	if minute < c.floor || minute > cur+skewMinutes {
		return fmt.Errorf("minute %d, relay at %d: %w", minute, cur, ErrClockSkew)
	}
	if c.has(fp) {
		return ErrReplay
	}
	if c.n >= c.max {
		return ErrReplayFull
	}
	set := c.minutes[minute]
	if set == nil {
		set = &replaySet{recent: make(map[uint64]struct{})}
		c.minutes[minute] = set
	}
	set.add(fp)
	c.n++
	return nil
}

// Len returns the number of entries held.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Fill returns how full the cache is, from 0 to 1.
func (c *ReplayCache) Fill() float64 {
	return float64(c.Len()) / float64(c.max)
}
