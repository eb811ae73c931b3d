package view

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
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
}

type entry struct {
	raw     []byte
	relay   *descriptor.Relay
	version uint64 // when a client last had reason to fetch it
}

// NewSet returns an empty view; now is the clock records are verified
// against (nil: time.Now).
func NewSet(now func() time.Time) *Set {
	if now == nil {
		now = time.Now
	}
	var b [8]byte
	crand.Read(b[:])
	return &Set{now: now, epoch: binary.BigEndian.Uint64(b[:]) | 1, entries: map[peer.ID]*entry{}}
}

// Offer verifies rec and keeps it if its relay is unknown or it carries
// a higher sequence number than the record held. The error is the
// verification's (the record is invalid) or ErrFull.
func (s *Set) Offer(rec []byte) (*descriptor.Relay, Outcome, error) {
	r, err := verify(rec, s.now())
	if err != nil {
		return nil, Stale, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.entries[r.PeerID]
	switch {
	case old != nil && old.relay.Seq >= r.Seq:
		return old.relay, Stale, nil
	case old == nil && len(s.entries) >= MaxRelays:
		s.pruneLocked()
		if len(s.entries) >= MaxRelays {
			return nil, Stale, ErrFull
		}
	}
	e := &entry{raw: bytes.Clone(rec), relay: r}
	if old != nil && !s.worthFetching(old.relay, r) {
		e.version = old.version
	} else {
		s.version++
		e.version = s.version
	}
	s.entries[r.PeerID] = e
	if old == nil {
		return r, Added, nil
	}
	return r, Updated, nil
}

// worthFetching reports whether a client holding old should fetch r: its
// content changed, or old has lived half its lifetime. A relay republishes
// often with nothing new but times; listing each republish would make
// clients fetch every one.
func (s *Set) worthFetching(old, r *descriptor.Relay) bool {
	return pastHalfLife(old, s.now()) || !sameContent(old, r)
}

// sameContent compares two descriptors of one relay but for their
// sequence numbers and times.
func sameContent(a, b *descriptor.Relay) bool {
	x, y := *a, *b
	x.Seq, x.Published, x.Expires = 0, 0, 0
	y.Seq, y.Published, y.Expires = 0, 0, 0
	return reflect.DeepEqual(x, y)
}

// pastHalfLife reports whether r has lived half its lifetime.
func pastHalfLife(r *descriptor.Relay, now time.Time) bool {
	return now.Unix() >= r.Published+(r.Expires-r.Published)/2
}

// verify decodes rec with limits and verifies it at now.
func verify(rec []byte, now time.Time) (*descriptor.Relay, error) {
	u, err := descriptor.Decode(rec)
	if err != nil {
		return nil, err
	}
	return u.Verify(now)
}

// Put is Offer for callers that want only the record kept: it returns
// the descriptor the set holds for the record's relay.
func (s *Set) Put(rec []byte) (*descriptor.Relay, error) {
	r, _, err := s.Offer(rec)
	return r, err
}

// Version counts the changes a client would fetch: it moves when a relay
// is added or its descriptor's content changes (or passes half its
// lifetime), not on a republish of the same content.
func (s *Set) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Get returns id's descriptor if it has not expired.
func (s *Set) Get(id peer.ID) (*descriptor.Relay, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil || !e.relay.ExpiresAt().After(s.now()) {
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
	if e == nil || !e.relay.ExpiresAt().After(s.now()) {
		return nil, false
	}
	return e.raw, true
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

// Prune drops expired descriptors.
func (s *Set) Prune() {
	s.mu.Lock()
	s.pruneLocked()
	s.mu.Unlock()
}

func (s *Set) pruneLocked() {
	now := s.now()
	for id, e := range s.entries {
		if !e.relay.ExpiresAt().After(now) {
			delete(s.entries, id)
		}
	}
}

// Digest lists the unexpired entries that moved after version since, in
// version order, at most max of them; if epoch is not this set's, since
// is void and the list starts from the beginning. Next is the version to
// ask from next time, and More says the list was cut at max.
func (s *Set) Digest(epoch, since uint64, max int) Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch != s.epoch || since > s.version {
		since = 0
	}
	now := s.now()
	var es []*entry
	for _, e := range s.entries {
		if e.version > since && e.relay.ExpiresAt().After(now) {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b *entry) int { return cmpUint(a.version, b.version) })
	d := Digest{Epoch: s.epoch, Next: s.version}
	if len(es) > max {
		es, d.More = es[:max], true
		d.Next = es[max-1].version
	}
	for _, e := range es {
		d.Entries = append(d.Entries, DigestEntry{ID: e.relay.PeerID, Seq: e.relay.Seq})
	}
	return d
}

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
