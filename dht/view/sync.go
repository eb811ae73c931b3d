package view

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/obolnet/obol/descriptor"
)

// Store is where a sync keeps the records it has verified: a relay's Set,
// or a client's persistent descriptor cache (*dht.Cache). Put verifies the
// record itself and keeps the highest sequence number.
type Store interface {
	Get(id peer.ID) (*descriptor.Relay, bool)
	Put(rec []byte) (*descriptor.Relay, error)
	Relays() []*descriptor.Relay // the unexpired ones
}

// Forgetter is a Store that can drop relays: a client's cache. A sync
// into one drops the relays that none of its sources holds any longer
// (see Syncer). A relay's Set is not one: it drops silent relays itself.
type Forgetter interface {
	Store
	Remove(id peer.ID)
}

// DefaultSources is how many relays, in different networks, a view is
// taken from in each round.
const DefaultSources = 3

// SyncConfig configures a Syncer. Zero values pick the defaults.
type SyncConfig struct {
	// Sources is how many relays each round asks (default DefaultSources).
	Sources int
	// AllowSameSubnet lets two sources share an IPv4 /16 or IPv6 /32; for
	// local test networks only.
	AllowSameSubnet bool
	// Preferred, if set, returns the relays to take the view from before
	// any other: a client's guards, which see its address anyway (Tor's
	// directory guards). Each round asks them first, then the sources
	// that answered well last round, then others at random, keeping the
	// rule of one source per network.
	Preferred func() []peer.AddrInfo
	// CloseDropped closes the connection to a relay that stops being a
	// source when nothing else uses it (no stream is open on it), so that
	// a client's former sources — the bootstrap relays once it has
	// guards — stop seeing it online. For clients: a relay's connections
	// also serve its DHT node.
	CloseDropped bool
	Now          func() time.Time // default time.Now
	Logger       *slog.Logger     // default: discard
}

// Syncer takes a view from relays into a Store: the union of what
// several sources serve, every record verified here. It remembers where
// each source's last digest ended, so a later round asks a source only
// for what changed since.
type Syncer struct {
	h     host.Host
	store Store
	cfg   SyncConfig

	mu      sync.Mutex      // guards the fields below
	sources []peer.AddrInfo // that answered well in the last round
	busy    []peer.ID       // former sources left connected: a stream was open
	cursors map[peer.ID]cursor
	// held is, for each source, the relays its view holds, as its
	// digests said: complete once a digest from the start was read.
	held map[peer.ID]*heldSet
	// names are the peer IDs of the short IDs the store holds, as of the
	// round's start, and of the records fetched since.
	names  map[ShortID]peer.ID
	shorts map[peer.ID]ShortID // Short, remembered
	last   Round
	// offset is how far the sources' clocks are ahead of this one, as
	// of the last round that heard two sources or more (ClockOffset).
	offset    time.Duration
	offsetSet bool
}

type heldSet struct {
	ids      map[ShortID]bool
	complete bool
}

type cursor struct{ epoch, next uint64 }

// Round is the outcome of one sync round.
type Round struct {
	At       time.Time // when the round ended
	Sources  int       // sources that answered with a well-formed view
	Listed   int       // digest entries read
	Fetched  int       // records kept (new or newer)
	Rejected int       // records that failed verification or were not asked for
	Gone     int       // relays dropped from the store: no source holds them
	Bytes    int       // of the answers read
	Sent     int       // bytes of the requests sent
	Bad      []peer.ID // sources that served a malformed answer or a bad record

	clocks []clockSample // what each source's digest said of its clock
}

// clockSample is a source's clock against this one: the time its digest
// gave less the middle of the round trip that brought it.
type clockSample struct {
	src    peer.ID
	offset time.Duration
}

// MaxClockOffset bounds the offset ClockOffset reports: sources further
// off than an hour are taken to be wrong, not this clock.
const MaxClockOffset = time.Hour

// ErrNoSource means no candidate source answered.
var ErrNoSource = errors.New("view: no source answered")

// NewSyncer returns a syncer into store over h. It starts nothing.
func NewSyncer(h host.Host, store Store, cfg SyncConfig) *Syncer {
	if cfg.Sources <= 0 {
		cfg.Sources = DefaultSources
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Syncer{h: h, store: store, cfg: cfg, cursors: map[peer.ID]cursor{}, held: map[peer.ID]*heldSet{}, shorts: map[peer.ID]ShortID{}}
}

// Last is the most recent round that reached a source.
func (s *Syncer) Last() Round {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Sources are the sources that answered well in the last round.
func (s *Syncer) Sources() []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]peer.ID, len(s.sources))
	for i, a := range s.sources {
		out[i] = a.ID
	}
	return out
}

// Sync runs one round: it picks sources among cands (different networks,
// at random), reads each one's digest since the last round and fetches
// the records it lists that are new or newer than the store's. A source
// that serves anything malformed or unverifiable is dropped for the round
// and reported in Round.Bad; the records verified before stay.
func (s *Syncer) Sync(ctx context.Context, cands []peer.AddrInfo) (Round, error) {
	srcs := s.pick(cands)
	s.learnNames()
	// The sources are asked in turn (a record listed by an earlier one
	// is fetched from it alone), but connected to at once: a client that
	// starts with no connection would otherwise wait for each handshake.
	var dials sync.WaitGroup
	defer dials.Wait()
	for _, src := range srcs[min(1, len(srcs)):] {
		dials.Go(func() { s.h.Connect(ctx, src) }) // syncFrom sees the outcome
	}
	var rd Round
	var good []peer.AddrInfo
	for _, src := range srcs {
		err := s.syncFrom(ctx, src, &rd)
		switch {
		case err == nil:
			rd.Sources++
			good = append(good, src)
		case errors.Is(err, ErrMalformed) || errors.Is(err, errForged):
			rd.Bad = append(rd.Bad, src.ID)
			s.cfg.Logger.Debug("view source served bad data", "peer", src.ID, "err", err)
		default:
			s.cfg.Logger.Debug("view source unreachable", "peer", src.ID, "err", err)
		}
	}
	rd.At = s.cfg.Now()
	s.learnClock(rd.clocks, good)
	if rd.Sources == 0 {
		s.keep(nil)
		return rd, fmt.Errorf("%w (%d tried)", ErrNoSource, len(srcs))
	}
	dropped := s.keep(good)
	rd.Gone = s.forget(good)
	s.mu.Lock()
	s.last = rd
	if s.cfg.CloseDropped {
		// Those still busy when they were dropped are tried again.
		for _, p := range s.busy {
			if !slices.Contains(dropped, p) && !slices.ContainsFunc(good, func(a peer.AddrInfo) bool { return a.ID == p }) {
				dropped = append(dropped, p)
			}
		}
	}
	s.mu.Unlock()
	if s.cfg.CloseDropped {
		var busy []peer.ID
		for _, p := range dropped {
			if !s.closeIdle(p) {
				busy = append(busy, p)
			}
		}
		s.mu.Lock()
		s.busy = busy
		s.mu.Unlock()
	}
	return rd, nil
}

// ClockOffset is how far the view's sources' clocks are ahead of this one
// (SyncConfig.Now), from the last round that heard at least two of them:
// with two, the offset nearer zero; with more, the median, so that one
// source's lie moves it no further than the others' truth. ok is false
// before such a round. A client adds it to its clock for the time its
// creates carry (specs/04-circuit.md §7.2), so that a client whose clock
// is off sends the minute every other client sends.
func (s *Syncer) ClockOffset() (offset time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset, s.offsetSet
}

// learnClock takes the offset of the sources that answered well.
func (s *Syncer) learnClock(samples []clockSample, good []peer.AddrInfo) {
	var offs []time.Duration
	for _, c := range samples {
		if slices.ContainsFunc(good, func(a peer.AddrInfo) bool { return a.ID == c.src }) {
			offs = append(offs, c.offset)
		}
	}
	if len(offs) < 2 {
		return
	}
	slices.Sort(offs)
	off := offs[len(offs)/2]
	if len(offs) == 2 {
		off = offs[0]
		if offs[1].Abs() < off.Abs() {
			off = offs[1]
		}
	}
	if off.Abs() > MaxClockOffset {
		return
	}
	s.mu.Lock()
	s.offset, s.offsetSet = off, true
	s.mu.Unlock()
}

// keep makes good the sources to keep, forgets the cursors of the others
// and returns the sources of the last round that are not kept.
func (s *Syncer) keep(good []peer.AddrInfo) (dropped []peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := func(id peer.ID) bool {
		return slices.ContainsFunc(good, func(a peer.AddrInfo) bool { return a.ID == id })
	}
	for _, old := range s.sources {
		if !in(old.ID) {
			dropped = append(dropped, old.ID)
		}
	}
	s.sources = good
	for id := range s.cursors {
		if !in(id) {
			delete(s.cursors, id)
		}
	}
	for id := range s.held {
		if !in(id) {
			delete(s.held, id)
		}
	}
	return dropped
}

// learnNames indexes the store's relays by short ID.
func (s *Syncer) learnNames() {
	rs := s.store.Relays()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names = make(map[ShortID]peer.ID, len(rs))
	seen := make(map[peer.ID]ShortID, len(rs))
	for _, r := range rs {
		sh, ok := s.shorts[r.PeerID]
		if !ok {
			sh = Short(r.PeerID)
		}
		seen[r.PeerID] = sh
		s.names[sh] = r.PeerID
	}
	s.shorts = seen
}

// forget drops from a Forgetter store the relays that no source of the
// round holds, once every source's list is complete: a client's view is
// the union of its sources' views, so a relay leaves it when it has left
// all of them — a relay that stopped and was listed as gone, or one that
// a new source set does not know. A single source cannot take a relay
// away from a client while another still lists it. Nothing is dropped
// when the sources together hold fewer than half the relays stored:
// sources that have not caught up, not a network that halved.
func (s *Syncer) forget(good []peer.AddrInfo) int {
	f, ok := s.store.(Forgetter)
	if !ok {
		return 0
	}
	s.mu.Lock()
	union := map[ShortID]bool{}
	for _, src := range good {
		h := s.held[src.ID]
		if h == nil || !h.complete {
			s.mu.Unlock()
			return 0
		}
		for id := range h.ids {
			union[id] = true
		}
	}
	stored := f.Relays()
	var gone []peer.ID
	for _, r := range stored {
		sh, ok := s.shorts[r.PeerID] // learnt at the round's start or fetched
		if !ok {
			sh = Short(r.PeerID)
		}
		if !union[sh] {
			gone = append(gone, r.PeerID)
		}
	}
	s.mu.Unlock()
	if len(gone) == 0 || 2*(len(stored)-len(gone)) < len(stored) {
		if len(gone) > 0 {
			s.cfg.Logger.Debug("view sources hold under half the stored relays; dropping none", "stored", len(stored), "held", len(stored)-len(gone))
		}
		return 0
	}
	for _, id := range gone {
		f.Remove(id)
	}
	return len(gone)
}

// closeIdle closes the connections to p if no stream is open on any.
// It reports false if a stream is open: a link channel to a guard of the
// client's, say, or a stream that has not ended yet.
func (s *Syncer) closeIdle(p peer.ID) bool {
	conns := s.h.Network().ConnsToPeer(p)
	for _, c := range conns {
		if len(c.GetStreams()) > 0 {
			return false
		}
	}
	if len(conns) > 0 {
		s.h.Network().ClosePeer(p)
	}
	return true
}

// pick takes the preferred sources first, then keeps the sources that
// answered well last round, so that their cursors keep digests short, and
// fills up from cands with relays of networks not yet among them.
func (s *Syncer) pick(cands []peer.AddrInfo) []peer.AddrInfo {
	var kept []peer.AddrInfo
	if s.cfg.Preferred != nil {
		kept = slices.Clone(s.cfg.Preferred())
	}
	s.mu.Lock()
	kept = append(kept, s.sources...)
	s.mu.Unlock()
	return pickSources(append(kept, cands...), s.cfg.Sources, s.h.ID(), s.cfg.AllowSameSubnet, len(kept))
}

// errForged marks a record that a source should not have served.
var errForged = errors.New("view: source served a bad record")

// syncFrom takes src's changes since its cursor into the store.
func (s *Syncer) syncFrom(ctx context.Context, src peer.AddrInfo, rd *Round) error {
	if err := s.h.Connect(ctx, src); err != nil {
		return err
	}
	s.mu.Lock()
	c := s.cursors[src.ID]
	s.mu.Unlock()
	var held *heldSet
	full := false
	for {
		d, err := s.digest(ctx, src.ID, c, rd)
		if err != nil {
			return err
		}
		if held == nil {
			// A digest from the start, or from a cursor of another
			// epoch, lists everything the source holds.
			full = c.next == 0 || c.epoch != d.Epoch
			s.mu.Lock()
			held = s.held[src.ID]
			if held == nil || full {
				held = &heldSet{ids: map[ShortID]bool{}}
				s.held[src.ID] = held
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		for _, e := range d.Entries {
			if e.Seq == Gone {
				delete(held.ids, e.ID)
			} else {
				held.ids[e.ID] = true
			}
		}
		n := len(held.ids)
		s.mu.Unlock()
		if n > MaxRelays {
			return malformed("source lists over %d relays", MaxRelays)
		}
		rd.Listed += len(d.Entries)
		if err := s.fetchWanted(ctx, src.ID, d.Entries, rd); err != nil {
			return err
		}
		c = cursor{epoch: d.Epoch, next: d.Next}
		s.mu.Lock()
		s.cursors[src.ID] = c
		s.mu.Unlock()
		if !d.More {
			if full {
				s.mu.Lock()
				held.complete = true
				s.mu.Unlock()
			}
			return nil
		}
	}
}

// fetchWanted fetches, a batch at a time, the listed records the store
// lacks or holds at a lower sequence number.
func (s *Syncer) fetchWanted(ctx context.Context, src peer.ID, es []DigestEntry, rd *Round) error {
	var want []ShortID
	for _, e := range es {
		if e.Seq == Gone {
			continue
		}
		s.mu.Lock()
		id, known := s.names[e.ID]
		s.mu.Unlock()
		if !known {
			want = append(want, e.ID)
		} else if r, ok := s.store.Get(id); !ok || r.Seq < e.Seq {
			want = append(want, e.ID)
		}
	}
	for len(want) > 0 {
		batch := want[:min(MaxFetch, len(want))]
		want = want[len(batch):]
		if err := s.fetch(ctx, src, batch, rd); err != nil {
			return err
		}
	}
	return nil
}

// fetch asks src for ids' records and keeps those that verify. A record
// that does not verify, or that names a relay not asked for, condemns
// the source.
func (s *Syncer) fetch(ctx context.Context, src peer.ID, ids []ShortID, rd *Round) error {
	q, err := EncodeRequest(Request{Fetch: ids})
	if err != nil {
		return err
	}
	rd.Sent += len(q)
	b, err := s.roundTrip(ctx, src, q, maxRecordsSize)
	if err != nil {
		return err
	}
	rd.Bytes += len(b)
	rs, err := DecodeRecords(b)
	if err != nil {
		return err
	}
	asked := map[ShortID]bool{}
	for _, id := range ids {
		asked[id] = true
	}
	for _, rec := range rs {
		u, err := descriptor.Decode(rec)
		if err != nil {
			rd.Rejected++
			return fmt.Errorf("%w: %v", errForged, err)
		}
		id := u.ClaimedPeerID()
		sh := Short(id)
		if !asked[sh] {
			rd.Rejected++
			return fmt.Errorf("%w: a record not asked for", errForged)
		}
		asked[sh] = false // once each
		if _, err := u.Verify(s.cfg.Now()); err != nil {
			rd.Rejected++
			if errors.Is(err, descriptor.ErrExpired) || errors.Is(err, descriptor.ErrNotYetValid) {
				continue // clocks differ; an honest source may serve it
			}
			return fmt.Errorf("%w: %v", errForged, err)
		}
		before, had := s.store.Get(id)
		r, err := s.store.Put(rec)
		if err != nil { // the store is full, or its clock moved on
			rd.Rejected++
			continue
		}
		if !had || r.Seq > before.Seq {
			rd.Fetched++
		}
		s.mu.Lock()
		s.names[sh] = id
		s.shorts[id] = sh
		s.mu.Unlock()
	}
	return nil
}

// digest reads one page of src's digest from c.
func (s *Syncer) digest(ctx context.Context, src peer.ID, c cursor, rd *Round) (Digest, error) {
	q, _ := EncodeRequest(Request{Epoch: c.epoch, Since: c.next})
	rd.Sent += len(q)
	sent := s.cfg.Now()
	b, err := s.roundTrip(ctx, src, q, maxDigestSize)
	if err != nil {
		return Digest{}, err
	}
	got := s.cfg.Now()
	rd.Bytes += len(b)
	d, err := DecodeDigest(b)
	if err == nil && !slices.ContainsFunc(rd.clocks, func(c clockSample) bool { return c.src == src }) {
		mid := sent.Add(got.Sub(sent) / 2)
		rd.clocks = append(rd.clocks, clockSample{src, time.UnixMilli(int64(d.Time)).Sub(mid)})
	}
	return d, err
}

// roundTrip sends one request on a new stream and reads the answer, at
// most max bytes.
func (s *Syncer) roundTrip(ctx context.Context, p peer.ID, req []byte, max int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	st, err := s.h.NewStream(ctx, p, protocol.ID(Protocol))
	if err != nil {
		return nil, fmt.Errorf("view: open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if _, err := st.Write(req); err != nil {
		st.Reset()
		return nil, fmt.Errorf("view: send request: %w", err)
	}
	st.CloseWrite()
	b, err := io.ReadAll(io.LimitReader(st, int64(max)+1))
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("view: read answer: %w", err)
	}
	st.Close()
	if len(b) > max {
		return nil, malformed("answer over %d bytes", max)
	}
	return b, nil
}

// Run syncs at once and then every interval until ctx ends, taking the
// candidates afresh each round. It returns nil when ctx is cancelled.
func (s *Syncer) Run(ctx context.Context, every time.Duration, cands func() []peer.AddrInfo) error {
	if every <= 0 {
		return errors.New("view: sync interval must be positive")
	}
	t := time.NewTimer(0)
	defer t.Stop()
	early := firstRetry // the first rounds come sooner: a view taken at
	// start may miss relays whose records were still on their way
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rd, err := s.Sync(ctx, cands())
		next := every
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Debug("view sync found no source; retrying", "err", err)
			next = min(every, retryAfter)
		} else {
			s.cfg.Logger.Debug("view synced", "sources", rd.Sources, "fetched", rd.Fetched, "rejected", rd.Rejected, "gone", rd.Gone)
			if early < every {
				next, early = early, 4*early
			}
		}
		t.Reset(next)
	}
}

// retryAfter is how soon a round that reached no source is tried again;
// firstRetry is the delay after the first round, growing fourfold per
// round up to the interval.
const (
	retryAfter = 5 * time.Second
	firstRetry = 5 * time.Second
)
