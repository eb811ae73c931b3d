package hidden

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
)

// Every hidden-service circuit of a client or a service runs
//
//	guard (layer 1) → vanguard (layer 2) → the relay of the role
//
// as Tor's vanguards-lite (proposal 333): a peer who makes a service
// build many circuits to a relay of its choice (a rendezvous point, by
// introducing itself again and again) sees only the vanguards next to
// that relay, never the guard. To walk back to the guard it must find and
// watch a vanguard within that vanguard's lifetime.
const (
	// guardSetSize is how many guards a client or service keeps.
	guardSetSize = 2
	// maxBackupGuards bounds the guards added while every guard of the
	// set is missing from the directory.
	maxBackupGuards = 2
	// vanguardSetSize is how many layer-2 guards are kept;
	// minListedVanguards how many of them must be in the directory.
	vanguardSetSize    = 4
	minListedVanguards = 2
	// Vanguards live between minVanguardLife and maxVanguardLife, drawn
	// uniformly when chosen.
	minVanguardLife = 24 * time.Hour
	maxVanguardLife = 12 * 24 * time.Hour
	// guardGrace is how long a guard or vanguard may be missing from the
	// directory before the set forgets it: an absence from a directory
	// read (a cold cache, a relay that republished late, a view an
	// attacker thinned) does not change the set.
	guardGrace = 7 * 24 * time.Hour
)

// guardSet keeps the first two hops of one client or service: guards
// chosen once and kept while they stay in the directory (or are missing
// for less than guardGrace), and vanguards chosen for a random lifetime.
//
// Guards are ordered: the first guardSetSize are the primaries. A
// missing primary is kept but not used while another is listed. Only if
// no primary is listed is a backup guard added (at most maxBackupGuards);
// backups are dropped as soon as a primary is listed again.
type guardSet struct {
	file   string // where the set persists; "" keeps it in memory
	logger *slog.Logger
	now    func() time.Time
	prefer func() []peer.ID // relays to take as new guards first; may be nil

	mu        sync.Mutex // guards the fields below
	guards    []guardEntry
	vanguards []guardEntry
	loaded    bool
}

// guardEntry is one guard or vanguard. Missing is when it was first seen
// missing from the directory (zero while listed); Expires is a
// vanguard's end of life.
type guardEntry struct {
	ID      peer.ID
	Missing time.Time
	Expires time.Time
}

// guardFile is the persisted set. Version 1 files were a bare JSON array
// of guard peer IDs; they are still read.
type guardFile struct {
	Version   int              `json:"version"`
	Guards    []guardFileEntry `json:"guards"`
	Vanguards []guardFileEntry `json:"vanguards"`
}

type guardFileEntry struct {
	ID      string `json:"id"`
	Missing int64  `json:"missing,omitempty"` // Unix seconds
	Expires int64  `json:"expires,omitempty"` // Unix seconds
}

const guardFileVersion = 2

// load reads the persisted set once; mu is held. A missing or unreadable
// file starts an empty set (which is then chosen afresh and written).
func (s *guardSet) load() {
	if s.loaded || s.file == "" {
		s.loaded = true
		return
	}
	s.loaded = true
	b, err := os.ReadFile(s.file)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var f guardFile
	if err == nil {
		var old []string
		if json.Unmarshal(b, &old) == nil {
			for _, id := range old {
				f.Guards = append(f.Guards, guardFileEntry{ID: id})
			}
		} else {
			err = json.Unmarshal(b, &f)
		}
	}
	if err != nil {
		s.logger.Warn("hidden-service guard file unreadable; choosing new guards", "err", err)
		return
	}
	s.guards = decodeEntries(f.Guards, guardSetSize+maxBackupGuards)
	s.vanguards = decodeEntries(f.Vanguards, vanguardSetSize)
}

func decodeEntries(in []guardFileEntry, limit int) []guardEntry {
	var out []guardEntry
	for _, e := range in {
		id, err := peer.Decode(e.ID)
		if err != nil || len(out) >= limit || slices.ContainsFunc(out, func(x guardEntry) bool { return x.ID == id }) {
			continue
		}
		g := guardEntry{ID: id}
		if e.Missing != 0 {
			g.Missing = time.Unix(e.Missing, 0)
		}
		if e.Expires != 0 {
			g.Expires = time.Unix(e.Expires, 0)
		}
		out = append(out, g)
	}
	return out
}

func encodeEntries(in []guardEntry) []guardFileEntry {
	out := make([]guardFileEntry, 0, len(in))
	for _, e := range in {
		f := guardFileEntry{ID: e.ID.String()}
		if !e.Missing.IsZero() {
			f.Missing = e.Missing.Unix()
		}
		if !e.Expires.IsZero() {
			f.Expires = e.Expires.Unix()
		}
		out = append(out, f)
	}
	return out
}

// save writes the set if it changed; mu is held.
func (s *guardSet) save(before []byte) {
	if s.file == "" {
		return
	}
	b := s.encode()
	if slices.Equal(before, b) {
		return
	}
	tmp := s.file + ".tmp"
	err := os.WriteFile(tmp, b, 0o600)
	if err == nil {
		err = os.Rename(tmp, s.file)
	}
	if err != nil {
		s.logger.Warn("hidden-service guards not saved", "err", err)
	}
}

func (s *guardSet) encode() []byte {
	b, _ := json.Marshal(guardFile{Version: guardFileVersion, Guards: encodeEntries(s.guards), Vanguards: encodeEntries(s.vanguards)})
	return b
}

// pick returns the first two hops of a circuit: a guard and a vanguard,
// neither in avoid (the circuit's other relays). cands are the
// directory's guard-capable relays, all of them: a relay is missing from
// the directory only if it is not among cands. The guard is one of
// entry's if entry is set (the node's one guard set), else of this set's
// own guards.
func (s *guardSet) pick(cands []client.Hop, entry Entry, avoid map[peer.ID]bool, prefer func(peer.ID) bool) (guard, vanguard client.Hop, ok bool) {
	var first, entryIDs []peer.ID
	var entryHops []client.Hop
	switch {
	case entry != nil:
		entryHops = entry.EntryGuards() // before the lock, as prefer
		for _, h := range entryHops {
			entryIDs = append(entryIDs, h.Peer.ID)
		}
	case s.prefer != nil:
		first = s.prefer() // before the lock: it may name this set's guards
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	before := s.encode()
	defer s.save(before)
	now := s.now()
	byID := make(map[peer.ID]client.Hop, len(cands))
	for _, c := range cands {
		byID[c.Peer.ID] = c
	}
	if entry != nil {
		// The node's guards are its guards here too: none of this set's
		// own (a file from before keeps its vanguards), and no vanguard
		// among them.
		s.guards = nil
		vcands := slices.DeleteFunc(slices.Clone(cands), func(h client.Hop) bool { return slices.Contains(entryIDs, h.Peer.ID) })
		if len(vcands) == 0 {
			// A network with no relay beyond the node's guards (a local
			// test network of three): a vanguard among the guards, never
			// the circuit's own guard, rather than no path at all.
			vcands = cands
		} else {
			// A vanguard chosen before that has since become a guard
			// (or one chosen beside a set of guards of its own) goes.
			s.vanguards = slices.DeleteFunc(s.vanguards, func(e guardEntry) bool { return slices.Contains(entryIDs, e.ID) })
		}
		s.refreshVanguards(byID, vcands, now)
		g, ok := firstGuard(entryHops, avoid, prefer)
		if !ok {
			return client.Hop{}, client.Hop{}, false
		}
		v, ok := choose(s.vanguards, byID, avoid, map[peer.ID]bool{g.Peer.ID: true}, prefer)
		return g, v, ok
	}
	s.refreshGuards(byID, cands, first, now)
	s.refreshVanguards(byID, cands, now)
	g, ok := choose(s.guards, byID, avoid, nil, prefer)
	if !ok {
		return client.Hop{}, client.Hop{}, false
	}
	v, ok := choose(s.vanguards, byID, avoid, map[peer.ID]bool{g.Peer.ID: true}, prefer)
	if !ok {
		return client.Hop{}, client.Hop{}, false
	}
	return g, v, true
}

// firstGuard returns the most preferred of guards not in avoid, one that
// prefer (if set) holds for where there is one: the order the node's own
// circuits take them in.
func firstGuard(guards []client.Hop, avoid map[peer.ID]bool, prefer func(peer.ID) bool) (client.Hop, bool) {
	var fallback *client.Hop
	for i, g := range guards {
		if avoid[g.Peer.ID] {
			continue
		}
		if prefer == nil || prefer(g.Peer.ID) {
			return g, true
		}
		if fallback == nil {
			fallback = &guards[i]
		}
	}
	if fallback == nil {
		return client.Hop{}, false
	}
	return *fallback, true
}

// choose returns a random listed entry that is in neither avoid set, one
// that prefer (if set) holds for where there is one.
func choose(set []guardEntry, byID map[peer.ID]client.Hop, avoid, avoid2 map[peer.ID]bool, prefer func(peer.ID) bool) (client.Hop, bool) {
	var usable, preferred []client.Hop
	for _, e := range set {
		if h, ok := byID[e.ID]; ok && !avoid[e.ID] && !avoid2[e.ID] {
			usable = append(usable, h)
			if prefer != nil && prefer(e.ID) {
				preferred = append(preferred, h)
			}
		}
	}
	if len(preferred) > 0 {
		usable = preferred
	}
	if len(usable) == 0 {
		return client.Hop{}, false
	}
	return usable[rand.IntN(len(usable))], true
}

// markPresence stamps the entries missing from the directory and forgets
// those missing for longer than guardGrace; mu is held.
func markPresence(set []guardEntry, byID map[peer.ID]client.Hop, now time.Time) []guardEntry {
	for i := range set {
		e := &set[i]
		switch _, listed := byID[e.ID]; {
		case listed:
			e.Missing = time.Time{}
		case e.Missing.IsZero():
			e.Missing = now
		}
	}
	return slices.DeleteFunc(set, func(e guardEntry) bool {
		return !e.Missing.IsZero() && now.Sub(e.Missing) > guardGrace
	})
}

func listed(e guardEntry) bool { return e.Missing.IsZero() }

// refreshGuards keeps the primaries, drops backups once a primary is
// listed, adds a backup if none is, and fills the primaries; mu is held.
func (s *guardSet) refreshGuards(byID map[peer.ID]client.Hop, cands []client.Hop, first []peer.ID, now time.Time) {
	s.guards = markPresence(s.guards, byID, now)
	primaries := s.guards[:min(len(s.guards), guardSetSize)]
	if slices.ContainsFunc(primaries, listed) {
		s.guards = primaries
	} else if len(s.guards) >= guardSetSize && !slices.ContainsFunc(s.guards, listed) {
		if len(s.guards) >= guardSetSize+maxBackupGuards {
			s.guards = slices.Delete(s.guards, guardSetSize, guardSetSize+1) // the oldest backup
		}
		s.addGuard(cands, first)
	}
	for len(s.guards) < guardSetSize && s.addGuard(cands, first) {
	}
}

// addGuard appends to the guards the first relay of first that is a
// candidate in neither layer, or else a random candidate; mu is held.
func (s *guardSet) addGuard(cands []client.Hop, first []peer.ID) bool {
	for _, id := range first {
		in := func(e guardEntry) bool { return e.ID == id }
		if slices.ContainsFunc(cands, func(h client.Hop) bool { return h.Peer.ID == id }) &&
			!slices.ContainsFunc(s.guards, in) && !slices.ContainsFunc(s.vanguards, in) {
			s.guards = append(s.guards, guardEntry{ID: id})
			return true
		}
	}
	return s.add(&s.guards, cands, time.Time{})
}

// refreshVanguards drops vanguards at the end of their life, fills the
// set, and keeps at least minListedVanguards of it listed (so that one
// is left beside the circuit's last relay): missing vanguards are
// replaced only when more than vanguardSetSize − minListedVanguards are
// missing at once; mu is held.
func (s *guardSet) refreshVanguards(byID map[peer.ID]client.Hop, cands []client.Hop, now time.Time) {
	s.vanguards = slices.DeleteFunc(markPresence(s.vanguards, byID, now), func(e guardEntry) bool {
		return !now.Before(e.Expires)
	})
	for len(s.vanguards) < vanguardSetSize || countListed(s.vanguards) < minListedVanguards {
		life := (minVanguardLife + rand.N(maxVanguardLife-minVanguardLife)).Truncate(time.Second)
		if !s.add(&s.vanguards, cands, now.Add(life)) {
			break
		}
	}
	for len(s.vanguards) > vanguardSetSize {
		i := slices.IndexFunc(s.vanguards, func(e guardEntry) bool { return !listed(e) })
		if i < 0 {
			i = len(s.vanguards) - 1
		}
		s.vanguards = slices.Delete(s.vanguards, i, i+1)
	}
}

func countListed(set []guardEntry) int {
	n := 0
	for _, e := range set {
		if listed(e) {
			n++
		}
	}
	return n
}

// add appends a random candidate that is in neither layer; mu is held.
func (s *guardSet) add(set *[]guardEntry, cands []client.Hop, expires time.Time) bool {
	for _, i := range rand.Perm(len(cands)) {
		id := cands[i].Peer.ID
		in := func(e guardEntry) bool { return e.ID == id }
		if !slices.ContainsFunc(s.guards, in) && !slices.ContainsFunc(s.vanguards, in) {
			*set = append(*set, guardEntry{ID: id, Expires: expires})
			return true
		}
	}
	return false
}

// Guards are the first hops of the hidden-service circuits of the nodes
// sharing n (Shared), primaries first; none before the set is chosen.
// With Entry set they are Entry's guards.
func (n Config) Guards() []peer.ID {
	if n.Entry != nil {
		return n.Entry.Guards()
	}
	if n.guards == nil {
		return nil
	}
	s := n.guards
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	out := make([]peer.ID, 0, len(s.guards))
	for _, e := range s.guards {
		out = append(out, e.ID)
	}
	return out
}

// snapshot returns the guards and vanguards (for tests).
func (s *guardSet) snapshot() (guards, vanguards []peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.guards {
		guards = append(guards, e.ID)
	}
	for _, e := range s.vanguards {
		vanguards = append(vanguards, e.ID)
	}
	return guards, vanguards
}
