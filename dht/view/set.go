package view

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// MaxRelays bounds a view, whatever the network sends: past it, records
// of relays not yet known are refused.
const MaxRelays = 10000

// Silent is how long a relay's view keeps a relay whose newest record was
// published that long ago: relays republish at least every MaxRepublish,
// and their records spread on the topic, so a relay not heard from for
// Silent is taken for gone — long before its record expires — and listed
// as such to clients (specs/11-view.md, "Liveness").
const (
	Silent       = 2 * time.Hour
	MaxRepublish = time.Hour
)

// ErrFull means the view holds MaxRelays relays.
var ErrFull = errors.New("view: full")

// Outcome is what offering a record to a Set did.
type Outcome int

// Outcomes of Offer.
const (
	Stale   Outcome = iota // a record with this sequence number or a higher one is held
	Added                  // the relay was not known
	Updated                // a lower sequence number was replaced
)

// Set is a relay's view: for each relay, the verified descriptor with the
// highest sequence number seen, until it expires. Every change that a
// client should fetch moves the entry to the next version of the set, so
// that a digest lists only what changed since a client's last visit
// (Digest).
type Set struct {
	now   func() time.Time
	epoch uint64 // random; tells a client the versions it holds are void

	mu      sync.Mutex // guards the fields below
	version uint64     // of the latest change
	entries map[peer.ID]*entry
	shorts  map[ShortID]peer.ID // of the entries
	gone    map[peer.ID]tombstone
}

type entry struct {
	short   ShortID
	raw     []byte
	relay   *descriptor.Relay
	version uint64 // when a client last had reason to fetch it
	// listed is when the record that version listed expires and was
	// published: a client holds that one until it is listed again.
	listedPublished, listedExpires int64
}

// live reports whether e's relay counts at now: its record has not
// expired, and it was heard from within Silent.
func (e *entry) live(now time.Time) bool {
	return e.relay.ExpiresAt().After(now) && !silent(e.relay, now)
}

// tombstone marks a relay dropped from the view (silent), at a version,
// until a record naming it would have expired everywhere.
type tombstone struct {
	version uint64
	until   time.Time
}

// NewSet returns an empty view; now is the clock records are verified
// against (nil: time.Now).
func NewSet(now func() time.Time) *Set {
	if now == nil {
		now = time.Now
	}
	var b [8]byte
	crand.Read(b[:])
	return &Set{now: now, epoch: binary.BigEndian.Uint64(b[:]) | 1, entries: map[peer.ID]*entry{}, shorts: map[ShortID]peer.ID{}, gone: map[peer.ID]tombstone{}}
}

// Offer verifies rec and keeps it if its relay is unknown or it carries
// a higher sequence number than the record held. The error is the
// verification's (the record is invalid) or ErrFull.
func (s *Set) Offer(rec []byte) (*descriptor.Relay, Outcome, error) {
	now := s.now()
	r, err := verify(rec, now)
	if err != nil {
		return nil, Stale, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.entries[r.PeerID]
	switch {
	case old != nil && old.relay.Seq >= r.Seq:
		return old.relay, Stale, nil
	case silent(r, now):
		// A record that old says nothing of whether its relay still
		// runs; one that does republishes within MaxRepublish.
		return nil, Stale, nil
	case old == nil && len(s.entries) >= MaxRelays:
		s.pruneLocked()
		if len(s.entries) >= MaxRelays {
			return nil, Stale, ErrFull
		}
	}
	e := &entry{short: Short(r.PeerID), raw: bytes.Clone(rec), relay: r}
	if other, ok := s.shorts[e.short]; ok && other != r.PeerID {
		// Another relay's peer ID with the same short ID: about 2^96
		// hashes of work. The relay first known keeps it.
		return nil, Stale, fmt.Errorf("%w: peer_id: its short ID is another relay's", descriptor.ErrField)
	}
	if old != nil && !s.worthFetching(old, r) {
		e.version, e.listedPublished, e.listedExpires = old.version, old.listedPublished, old.listedExpires
	} else {
		s.version++
		e.version, e.listedPublished, e.listedExpires = s.version, r.Published, r.Expires
	}
	s.entries[r.PeerID] = e
	s.shorts[e.short] = r.PeerID
	delete(s.gone, r.PeerID)
	if old == nil {
		return r, Added, nil
	}
	return r, Updated, nil
}

// worthFetching reports whether a client holding the record old listed
// should fetch r: its content changed, or the listed record is in the
// last sixteenth of its life (the last 90 minutes of a day: relays
// republish at least hourly, so the renewal is listed at least half an
// hour before the listed record expires). A relay republishes often
// with nothing new but times, and adds the key of a coming interval
// every few hours (the listed record names the keys of its whole life,
// 04 §10); listing each republish would make clients fetch every one.
//
// A record that drops a key still valid (a relay that lost its keys and
// made new ones) is listed: the record a client holds names keys the
// relay no longer answers.
func (s *Set) worthFetching(old *entry, r *descriptor.Relay) bool {
	now := s.now()
	return now.Unix() >= old.listedExpires-(old.listedExpires-old.listedPublished)/16 ||
		!sameContent(old.relay, r) || !keepsKeys(old.relay, r, now)
}

// keepsKeys reports whether r names every key of old still valid at now.
func keepsKeys(old, r *descriptor.Relay, now time.Time) bool {
	for _, k := range old.OnionKeys {
		if k.NotAfter > now.Unix() && !slices.Contains(r.OnionKeys, k) {
			return false
		}
	}
	return true
}

// sameContent compares two descriptors of one relay but for their
// sequence numbers, times and onion keys.
func sameContent(a, b *descriptor.Relay) bool {
	x, y := *a, *b
	x.Seq, x.Published, x.Expires, x.OnionKeys = 0, 0, 0, nil
	y.Seq, y.Published, y.Expires, y.OnionKeys = 0, 0, 0, nil
	return reflect.DeepEqual(x, y)
}

// silent reports whether r was published Silent ago or more.
func silent(r *descriptor.Relay, now time.Time) bool {
	return now.Unix()-r.Published >= int64(Silent/time.Second)
}

// verify decodes rec with limits and verifies it at now. The view takes
// no record numbered Gone: a digest lists a dropped relay with it.
func verify(rec []byte, now time.Time) (*descriptor.Relay, error) {
	u, err := descriptor.Decode(rec)
	if err != nil {
		return nil, err
	}
	r, err := u.Verify(now)
	if err == nil && r.Seq == Gone {
		return nil, fmt.Errorf("%w: seq: 0 is reserved in the view", descriptor.ErrField)
	}
	return r, err
}

// Put is Offer for callers that want only the record kept: it returns
// the descriptor the set holds for the record's relay.
func (s *Set) Put(rec []byte) (*descriptor.Relay, error) {
	r, _, err := s.Offer(rec)
	return r, err
}

// Version counts the changes a client would fetch: it moves when a relay
// is added or dropped, or its descriptor's content changes (or the listed
// one nears its expiry), not on a republish of the same content.
func (s *Set) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Get returns id's descriptor if it has not expired and its relay was
// heard from within Silent.
func (s *Set) Get(id peer.ID) (*descriptor.Relay, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil || !e.live(s.now()) {
		return nil, false
	}
	return e.relay, true
}

// IsRelay reports whether the view holds an unexpired descriptor of id:
// router.RelayChecker, so that a relay's caps treat the relays it knows
// as relays.
func (s *Set) IsRelay(id peer.ID) bool {
	_, ok := s.Get(id)
	return ok
}

// Record returns id's signed record if it has not expired.
func (s *Set) Record(id peer.ID) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil || !e.live(s.now()) {
		return nil, false
	}
	return e.raw, true
}

// RecordByShort returns the signed record of the relay whose short ID is
// id, if it is live.
func (s *Set) RecordByShort(id ShortID) ([]byte, bool) {
	s.mu.Lock()
	p, ok := s.shorts[id]
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	return s.Record(p)
}

// Relays returns every unexpired descriptor.
func (s *Set) Relays() []*descriptor.Relay {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	out := make([]*descriptor.Relay, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e.relay)
	}
	return out
}

// Len is the number of relays held, expired ones included until pruned.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Prune drops expired descriptors, and those of relays silent for Silent,
// which it lists as gone.
func (s *Set) Prune() {
	s.mu.Lock()
	s.pruneLocked()
	s.mu.Unlock()
}

func (s *Set) pruneLocked() {
	now := s.now()
	for id, e := range s.entries {
		switch {
		case !e.relay.ExpiresAt().After(now):
			delete(s.entries, id)
			delete(s.shorts, e.short)
		case silent(e.relay, now):
			delete(s.entries, id)
			delete(s.shorts, e.short)
			s.version++
			s.gone[id] = tombstone{version: s.version, until: e.relay.ExpiresAt()}
		}
	}
	for id, g := range s.gone {
		if !g.until.After(now) {
			delete(s.gone, id)
		}
	}
}

// Digest lists the entries that moved after version since, in version
// order, at most max of them: the relays held, with their sequence
// numbers, and those dropped since, with sequence number 0 (Gone). If
// epoch is not this set's, since is void and the list starts from the
// beginning, without the dropped ones. Next is the version to ask from
// next time, and More says the list was cut at max.
func (s *Set) Digest(epoch, since uint64, max int) Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	full := epoch != s.epoch || since > s.version || since == 0
	if full {
		since = 0
	}
	type listing struct {
		version uint64
		e       DigestEntry
	}
	var ls []listing
	for _, e := range s.entries {
		if e.version > since {
			ls = append(ls, listing{e.version, DigestEntry{ID: e.short, Seq: e.relay.Seq}})
		}
	}
	if !full {
		for id, g := range s.gone {
			if g.version > since {
				ls = append(ls, listing{g.version, DigestEntry{ID: Short(id), Seq: Gone}})
			}
		}
	}
	slices.SortFunc(ls, func(a, b listing) int { return cmpUint(a.version, b.version) })
	d := Digest{Epoch: s.epoch, Next: s.version, Time: unixMilli(s.now())}
	if len(ls) > max {
		ls, d.More = ls[:max], true
		d.Next = ls[max-1].version
	}
	for _, l := range ls {
		d.Entries = append(d.Entries, l.e)
	}
	return d
}

// Gone is the sequence number a digest lists a dropped relay with: no
// record has it (descriptors number from 1).
const Gone = 0

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ErrUnknownRelay means a relay is not in the view. A relay refuses to
// extend a circuit to it at once, without looking it up anywhere: a
// lookup would tell the DHT the circuit's next hop.
var ErrUnknownRelay = errors.New("view: relay not in the view")

// AddrInfo is where relay id listens, from its descriptor in the view.
// It makes a Set the router's directory of next hops (router.Directory):
// it never looks anything up.
func (s *Set) AddrInfo(_ context.Context, id peer.ID) (peer.AddrInfo, error) {
	r, ok := s.Get(id)
	if !ok {
		return peer.AddrInfo{}, ErrUnknownRelay
	}
	return AddrInfo(r), nil
}
