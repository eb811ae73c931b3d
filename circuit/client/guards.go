package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// Guards: a client enters the network through a small, persistent set of
// guard relays, so that a hostile relay sees it as a first hop only if it
// is one of them, instead of eventually with certainty
// (specs/10-client.md §4).
//
// A guard's life:
//
//	chosen ──► up ──(a channel to it fails)──► down ──(a channel opens)──► up
//	  │          │                               │
//	  │          └─(its lifetime ends, or it     └─(down for ReplaceAfter while
//	  │             is missing from the cache        another guard was reached
//	  │             for ReplaceAfter)──► dropped      since)──► dropped
//	  └── at most one guard is dropped for being down or missing per refresh
//
// Dropped guards are replaced by new ones drawn by bandwidth among the
// relays with the guard role that the client has seen for minAge: a relay
// cannot make itself a guard by declaring the role, only by being in the
// view for days (specs/10-client.md §4.1). The relays of the client's
// first view, seen within baselineWindow of its first refresh, count as
// seen long enough: a client with no history has nothing else to judge by.
//
// The same history decides which relays with the exit role may be exits:
// those seen for minExitAge (oldExit, specs/10-client.md §3.6).

// guardRecord is one guard as stored in the guard file.
type guardRecord struct {
	ID          peer.ID   `json:"id"`
	Added       time.Time `json:"added"`
	Until       time.Time `json:"until"`                  // end of its lifetime
	DownSince   time.Time `json:"down_since,omitzero"`    // first failure since the last success
	LastFailure time.Time `json:"last_failure,omitzero"`  // most recent failure
	LastSuccess time.Time `json:"last_success,omitzero"`  // most recent channel opened
	Missing     time.Time `json:"missing_since,omitzero"` // absent from the cache since
	Bias        pathBias  `json:"path_bias,omitzero"`
	Disabled    time.Time `json:"disabled,omitzero"` // by path bias: never used again

	retryAt time.Time // not stored: a down guard is skipped until then
}

// seenRecord is when the client first and last had a relay in its view,
// in Unix seconds.
type seenRecord struct {
	First int64 `json:"f"`
	Last  int64 `json:"l"`
}

// guardFileVersion is the format of the guard file; version 1 files (no
// history) are read too.
const guardFileVersion = 2

type guardFile struct {
	Version int                   `json:"version"`
	Since   time.Time             `json:"history_since,omitzero"` // the first refresh with a non-empty view
	Guards  []guardRecord         `json:"guards"`
	Seen    map[string]seenRecord `json:"seen,omitempty"` // by peer ID
}

// History of the relays seen.
const (
	// baselineWindow: relays first seen this soon after the history
	// started are as good as old.
	baselineWindow = 30 * time.Minute
	// seenRefresh is how stale a relay's last sighting may be stored.
	seenRefresh = 24 * time.Hour
	// seenForget: a relay absent this long is forgotten; if it comes
	// back, its age starts again.
	seenForget = 30 * 24 * time.Hour
)

// guardRetry is how long a guard that just failed is skipped while
// another is usable.
const guardRetry = 30 * time.Second

// guardSet is the client's guards, in order of preference.
type guardSet struct {
	path         string // "" keeps them in memory
	n            int
	lifetime     time.Duration
	replaceAfter time.Duration
	minAge       time.Duration // ≤ 0: any relay with the role may be a guard
	minExitAge   time.Duration // ≤ 0: any relay with the role may be an exit
	bias         biasParams
	prefer       func() []peer.ID // relays to take as new guards first; may be nil

	mu     sync.Mutex // guards the fields below
	guards []guardRecord
	since  time.Time // the history of seen relays began
	seen   map[peer.ID]seenRecord
}

// ErrGuardFile means the guard file cannot be read or written: fix its
// permissions or remove it (new guards will be chosen).
var ErrGuardFile = errors.New("client: guard file")

func newGuardSet(path string, n int, lifetime, replaceAfter, minAge time.Duration) *guardSet {
	return &guardSet{path: path, n: n, lifetime: lifetime, replaceAfter: replaceAfter, minAge: minAge,
		bias: defaultBias, seen: map[peer.ID]seenRecord{}}
}

// SavedGuards are the guards in use that the guard file at path holds,
// most preferred first (none if there is no file): what a client that
// starts again knows of its guards before its manager exists.
func SavedGuards(path string) ([]peer.ID, error) {
	g := newGuardSet(path, 0, 0, 0, 0)
	if err := g.load(); err != nil {
		return nil, err
	}
	return g.IDs(), nil
}

// load reads the guard file; a missing file is an empty set.
func (g *guardSet) load() error {
	if g.path == "" {
		return nil
	}
	b, err := os.ReadFile(g.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrGuardFile, err)
	}
	var f guardFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version < 1 || f.Version > guardFileVersion {
		return fmt.Errorf("%w: %s is not a version %d guard file", ErrGuardFile, g.path, guardFileVersion)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.since, g.seen = f.Since, map[peer.ID]seenRecord{}
	for s, r := range f.Seen {
		if id, err := peer.Decode(s); err == nil && r.First <= r.Last {
			g.seen[id] = r
		}
	}
	g.guards = nil
	for _, r := range f.Guards {
		if r.ID.Validate() == nil && !slices.ContainsFunc(g.guards, func(o guardRecord) bool { return o.ID == r.ID }) {
			g.guards = append(g.guards, r)
		}
	}
	return nil
}

// saveLocked writes the guard file atomically. mu is held.
func (g *guardSet) saveLocked() error {
	if g.path == "" {
		return nil
	}
	seen := make(map[string]seenRecord, len(g.seen))
	for id, r := range g.seen {
		seen[id.String()] = r
	}
	b, err := json.MarshalIndent(guardFile{Version: guardFileVersion, Since: g.since, Guards: g.guards, Seen: seen}, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrGuardFile, err)
	}
	if err := writeFileAtomic(g.path, append(b, '\n')); err != nil {
		return fmt.Errorf("%w: %w", ErrGuardFile, err)
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".guards-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// IDs returns the guards in use, most preferred first.
func (g *guardSet) IDs() []peer.ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []peer.ID
	for _, r := range g.guards {
		if r.Disabled.IsZero() {
			out = append(out, r.ID)
		}
	}
	return out
}

// activeLocked counts the guards in use. mu is held.
func (g *guardSet) activeLocked() int {
	n := 0
	for _, r := range g.guards {
		if r.Disabled.IsZero() {
			n++
		}
	}
	return n
}

// status describes every guard, those disabled too.
func (g *guardSet) status() []GuardStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]GuardStatus, len(g.guards))
	for i, r := range g.guards {
		b := r.Bias
		out[i] = GuardStatus{ID: r.ID, Circuits: uint64(b.Attempts), Built: uint64(b.Built),
			Streams: uint64(b.Streams), Answered: uint64(b.Answered), Disabled: r.Disabled}
	}
	return out
}

// refresh notes which relays the view holds, drops guards whose lifetime
// ended and at most one guard that has been down or missing for too long,
// and fills the set up from the relays of cands old enough to be guards.
// It saves the set if it changed.
func (g *guardSet) refresh(cands []*candidate, rules pathRules, rnd *rand.Rand, now time.Time) (changed bool, err error) {
	var prefer []peer.ID
	if g.prefer != nil {
		prefer = g.prefer() // before the lock: it may name this set's guards
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	changed = g.observeLocked(cands, now)
	byID := make(map[peer.ID]*candidate, len(cands))
	eligible := make(map[peer.ID]*candidate, len(cands))
	for _, c := range cands {
		if c.r.Roles.Has(descriptor.RoleGuard) {
			byID[c.id()] = c
			if g.oldEnoughLocked(c.id(), now) {
				eligible[c.id()] = c
			}
		}
	}
	changed = g.markMissingLocked(byID, len(cands) > 0, now) || changed
	changed = g.dropLocked(now) || changed
	changed = g.fillLocked(eligible, byID, cands, prefer, rules, rnd, now) || changed
	if changed {
		err = g.saveLocked()
	}
	return changed, err
}

// observeLocked records the relays of the view: when each was first seen,
// and, coarsely, last seen; it forgets relays absent for seenForget. An
// empty view says nothing.
func (g *guardSet) observeLocked(cands []*candidate, now time.Time) bool {
	if len(cands) == 0 {
		return false
	}
	changed := false
	if g.since.IsZero() {
		g.since, changed = now, true
	}
	t := now.Unix()
	for _, c := range cands {
		r, ok := g.seen[c.id()]
		switch {
		case !ok:
			g.seen[c.id()], changed = seenRecord{First: t, Last: t}, true
		case t-r.Last >= int64(seenRefresh/time.Second):
			r.Last, changed = t, true
			g.seen[c.id()] = r
		}
	}
	for id, r := range g.seen {
		if t-r.Last >= int64(seenForget/time.Second) {
			delete(g.seen, id)
			changed = true
		}
	}
	return changed
}

// oldEnoughLocked reports whether relay id may become a guard: it has
// been in the view for minAge, or since the history began.
func (g *guardSet) oldEnoughLocked(id peer.ID, now time.Time) bool {
	return g.seenForLocked(id, now, g.minAge)
}

// oldExit reports whether relay id may be an exit: it has been in the
// view for minExitAge, or since the history began.
func (g *guardSet) oldExit(id peer.ID, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seenForLocked(id, now, g.minExitAge)
}

// noHistory reports whether no relay has been recorded yet (a new client,
// or a guard file of version 1): no exit is old enough until refresh.
func (g *guardSet) noHistory() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.since.IsZero()
}

// seenForLocked reports whether relay id has been in the view for age, or
// since the history began; any relay has if age ≤ 0. mu is held.
func (g *guardSet) seenForLocked(id peer.ID, now time.Time, age time.Duration) bool {
	if age <= 0 {
		return true
	}
	r, ok := g.seen[id]
	if !ok {
		return false
	}
	first := time.Unix(r.First, 0)
	return now.Sub(first) >= age || first.Before(g.since.Add(baselineWindow))
}

// markMissingLocked notes which guards the cache lacks. An empty cache
// says nothing about any relay.
func (g *guardSet) markMissingLocked(byID map[peer.ID]*candidate, informative bool, now time.Time) bool {
	changed := false
	for i := range g.guards {
		r := &g.guards[i]
		_, listed := byID[r.ID]
		switch {
		case listed && !r.Missing.IsZero():
			r.Missing, changed = time.Time{}, true
		case !listed && informative && r.Missing.IsZero():
			r.Missing, changed = now, true
		}
	}
	return changed
}

// dropLocked drops expired guards, and one guard that is down or missing
// for too long.
func (g *guardSet) dropLocked(now time.Time) bool {
	n := len(g.guards)
	g.guards = slices.DeleteFunc(g.guards, func(r guardRecord) bool { return !now.Before(r.Until) })
	for i, r := range g.guards {
		if r.Disabled.IsZero() && g.replaceableLocked(r, now) {
			g.guards = slices.Delete(g.guards, i, i+1)
			break
		}
	}
	return len(g.guards) != n
}

// replaceableLocked: r has been missing from the cache for replaceAfter,
// or has kept failing for replaceAfter while another guard was reached
// after r went down (so the fault is r's, not the client's network).
func (g *guardSet) replaceableLocked(r guardRecord, now time.Time) bool {
	if !r.Missing.IsZero() && now.Sub(r.Missing) >= g.replaceAfter {
		return true
	}
	if r.DownSince.IsZero() || r.LastFailure.Sub(r.DownSince) < g.replaceAfter {
		return false
	}
	for _, o := range g.guards {
		if o.ID != r.ID && o.LastSuccess.After(r.DownSince) {
			return true
		}
	}
	return false
}

// fillLocked adds guards drawn by bandwidth from eligible until there are
// n, each unrelated to the guards already chosen (byID: every listed relay
// with the role; view: every candidate).
func (g *guardSet) fillLocked(eligible, byID map[peer.ID]*candidate, view []*candidate, prefer []peer.ID, rules pathRules, rnd *rand.Rand, now time.Time) bool {
	changed := false
	var pool []*candidate // in a fixed order: the draws depend on rnd alone
	for g.activeLocked() < g.n {
		var chosen []*candidate
		avoid := map[peer.ID]bool{}
		for _, r := range g.guards {
			avoid[r.ID] = true
			if c := byID[r.ID]; c != nil && r.Disabled.IsZero() {
				chosen = append(chosen, c)
			}
		}
		if pool == nil {
			pool = make([]*candidate, 0, len(eligible))
			for _, c := range eligible {
				pool = append(pool, c)
			}
			slices.SortFunc(pool, func(a, b *candidate) int { return compareIDs(a.id(), b.id()) })
			rules.weighGuards(pool, view)
		}
		c := preferred(prefer, eligible, chosen, avoid, rules, rnd)
		if c == nil {
			c = rules.pick(pool, chosen, &pathRequest{avoid: avoid, rnd: rnd}, posGuard, func(*candidate) bool { return true })
		}
		if c == nil {
			break
		}
		// Lifetimes are spread so that guards chosen together do not
		// all expire together.
		life := g.lifetime - time.Duration(rnd.Int64N(int64(g.lifetime/4)+1))
		g.guards = append(g.guards, guardRecord{ID: c.id(), Added: now, Until: now.Add(life)})
		changed = true
	}
	return changed
}

// preferred is the first relay of prefer that may join the guards:
// eligible, not in the set, and allowed by the path rules beside the
// guards chosen (family, network).
func preferred(prefer []peer.ID, eligible map[peer.ID]*candidate, chosen []*candidate, avoid map[peer.ID]bool, rules pathRules, rnd *rand.Rand) *candidate {
	for _, id := range prefer {
		c := eligible[id]
		if c == nil || avoid[id] {
			continue
		}
		if c = rules.pick([]*candidate{c}, chosen, &pathRequest{avoid: avoid, rnd: rnd}, posGuard, func(*candidate) bool { return true }); c != nil {
			return c
		}
	}
	return nil
}

func compareIDs(a, b peer.ID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// usable returns the guards that have a candidate, most preferred first:
// those not waiting to be retried, or every listed guard if all are.
func (g *guardSet) usable(cands []*candidate, now time.Time) []*candidate {
	byID := make(map[peer.ID]*candidate, len(cands))
	for _, c := range cands {
		byID[c.id()] = c
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var ready, waiting []*candidate
	for _, r := range g.guards {
		c := byID[r.ID]
		switch {
		case c == nil, !r.Disabled.IsZero():
		case now.Before(r.retryAt):
			waiting = append(waiting, c)
		default:
			ready = append(ready, c)
		}
	}
	return append(ready, waiting...)
}

// succeeded records that a channel to guard id opened.
func (g *guardSet) succeeded(id peer.ID, now time.Time) {
	g.update(id, func(r *guardRecord) bool {
		wasDown := !r.DownSince.IsZero()
		r.DownSince, r.retryAt = time.Time{}, time.Time{}
		first := r.LastSuccess.IsZero()
		// Saving on every success would write the file per circuit;
		// a coarse timestamp is enough for the replacement rule.
		stale := now.Sub(r.LastSuccess) > time.Minute
		r.LastSuccess = now
		return wasDown || first || stale
	})
}

// failed records that a channel to guard id could not be opened.
func (g *guardSet) failed(id peer.ID, now time.Time) {
	g.update(id, func(r *guardRecord) bool {
		if r.DownSince.IsZero() {
			r.DownSince = now
		}
		r.LastFailure = now
		r.retryAt = now.Add(guardRetry)
		return true
	})
}

func (g *guardSet) update(id peer.ID, f func(*guardRecord) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.guards {
		if g.guards[i].ID == id {
			if f(&g.guards[i]) {
				_ = g.saveLocked() // refresh reports a persistent failure
			}
			return
		}
	}
}

// biasEvent is a guard's path-bias verdict, worse than any before.
type biasEvent struct {
	id      peer.ID
	verdict biasVerdict
	bias    pathBias
}

// recordBias applies count to the path-bias counts of guard id. It
// returns the guard's verdict if it is worse than any reported before; a
// guard judged extreme is disabled.
func (g *guardSet) recordBias(id peer.ID, now time.Time, count func(*pathBias, biasParams)) (ev biasEvent, worse bool) {
	g.update(id, func(r *guardRecord) bool {
		if !r.Disabled.IsZero() {
			return false
		}
		count(&r.Bias, g.bias)
		v := r.Bias.verdict(g.bias)
		if int(v) <= r.Bias.Level {
			// The counts are saved now and then, not on every circuit.
			return int(r.Bias.Attempts+r.Bias.Streams)%16 == 0
		}
		r.Bias.Level = int(v)
		if v == biasExtreme {
			r.Disabled = now
		}
		ev, worse = biasEvent{id: id, verdict: v, bias: r.Bias}, true
		return true
	})
	return ev, worse
}

// isGuard reports whether id is one of the guards.
func (g *guardSet) isGuard(id peer.ID) bool {
	return slices.Contains(g.IDs(), id)
}
