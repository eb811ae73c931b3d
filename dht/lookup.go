package dht

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// Record lookups over disjoint paths (S/Kademlia, Baumgart and Mies 2007).
// The k peers of the routing table closest to the key are dealt out to d
// paths in turn; each path walks toward the key on its own, asking its
// closest unasked candidates α at a time for the record and for closer
// peers, and a peer belongs to at most one path: a peer another path has
// already taken is skipped. An attacker must then sit on every path to
// hide a record, not just on the one a plain walk converges on; records
// from all paths go through the validator and the best one wins.
//
// A path stops when it holds pathQuorum valid records, when the k closest
// candidates it knows that did not fail have all been asked, or when the
// lookup's budget of queried peers is spent. The whole lookup is bounded
// by lookupTimeout and by maxQueriesPerPath × d queried peers.
//
// A path that holds a valid record and has no one left to ask does not
// wait out a peer that does not answer: a peer that has gone (its port
// closed, its host unreachable) costs a query its whole timeout, and on a
// network with fewer holders than d × pathQuorum every path would wait
// for it. Such a path stops once its queries still in flight have gone
// unanswered for stragglerWait: three times the slowest answer the path
// has had, and at least stragglerMin. A path without a valid record still
// waits for every peer it asked.

// DefaultLookupPaths is how many disjoint paths a record lookup walks.
const DefaultLookupPaths = 3

// Parameters of a path and bounds of a lookup.
const (
	pathAlpha         = 5  // queries in flight per path
	pathQuorum        = 3  // valid records after which a path stops
	maxQueriesPerPath = 20 // the lookup asks at most d × this many peers
	lookupTimeout     = 10 * time.Second
	stragglerMin      = 500 * time.Millisecond
)

// queryFunc asks peer p for the record: it returns the raw record, nil if
// p has none, and the peers p names as closer to the key.
type queryFunc func(ctx context.Context, p peer.ID) (rec []byte, closer []peer.ID, err error)

// lookupParams shape one disjoint lookup.
type lookupParams struct {
	paths, alpha, quorum int
	k                    int // candidates a path keeps in view (bucket size)
	maxQueries           int // peers queried by all paths together
}

func defaultLookupParams(paths, k int) lookupParams {
	return lookupParams{paths: paths, alpha: pathAlpha, quorum: pathQuorum, k: k,
		maxQueries: paths * maxQueriesPerPath}
}

// disjointLookup is the state the paths of one lookup share. It does no
// I/O of its own: peers are asked through query.
type disjointLookup struct {
	p      lookupParams
	target kb.ID
	self   peer.ID
	query  queryFunc
	valid  func(rec []byte) bool

	mu      sync.Mutex // guards the fields below
	owner   map[peer.ID]int
	queried int
	records [][]byte
}

func newDisjointLookup(p lookupParams, key string, self peer.ID, q queryFunc, valid func([]byte) bool) *disjointLookup {
	return &disjointLookup{p: p, target: kb.ConvertKey(key), self: self, query: q, valid: valid,
		owner: map[peer.ID]int{}}
}

// run walks the paths from seeds (the routing table's closest peers) and
// returns every valid record they found, each as often as it was found.
func (l *disjointLookup) run(ctx context.Context, seeds []peer.ID) [][]byte {
	paths := make([][]peer.ID, l.p.paths)
	i := 0
	for _, s := range seeds {
		if s == l.self || l.owner[s] != 0 {
			continue
		}
		l.owner[s] = i%l.p.paths + 1
		paths[i%l.p.paths] = append(paths[i%l.p.paths], s)
		i++
	}
	var wg sync.WaitGroup
	for n, ps := range paths {
		if len(ps) > 0 {
			wg.Go(func() { l.walk(ctx, n+1, ps) })
		}
	}
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records
}

type claim int

const (
	claimed   claim = iota // the peer is this path's to ask
	taken                  // another path has it
	exhausted              // the lookup's budget is spent
)

// claim gives p to path n if no other path has it and the budget allows
// one more query.
func (l *disjointLookup) claim(n int, p peer.ID) claim {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o := l.owner[p]; o != 0 && o != n {
		return taken
	}
	if l.queried >= l.p.maxQueries {
		return exhausted
	}
	l.owner[p] = n
	l.queried++
	return claimed
}

// accept keeps rec if it is valid and says whether it was.
func (l *disjointLookup) accept(rec []byte) bool {
	if rec == nil || !l.valid(rec) {
		return false
	}
	l.mu.Lock()
	l.records = append(l.records, rec)
	l.mu.Unlock()
	return true
}

type answer struct {
	p      peer.ID
	rec    []byte
	closer []peer.ID
	err    error
	took   time.Duration
}

// walk is one path, numbered n from 1. It returns when the path stops.
//
// The path's queries run on a context of their own, cancelled once the
// path holds its quorum or has no query in flight. Queries a path leaves
// unanswered (stragglers, or all of them when ctx ends) run on to their
// own RPC timeout: a peer that has gone is then found to have gone, and
// leaves the routing table, instead of costing the next lookup again.
func (l *disjointLookup) walk(ctx context.Context, n int, seeds []peer.ID) {
	qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ps := newPathState(l.target, l.p.k)
	for _, s := range seeds {
		ps.add(s)
	}
	answers := make(chan answer, l.p.alpha)
	inflight, valid := 0, 0
	// leave returns from the path with queries in flight: they end on
	// their own, and then so does their context.
	leave := func() {
		go func(n int) {
			for range n {
				<-answers
			}
			cancel()
		}(inflight)
	}
	var slowest time.Duration // the slowest answer so far
	lastAnswer := time.Now()  // or the path's start
	var straggler *time.Timer
	defer func() {
		if straggler != nil {
			straggler.Stop()
		}
	}()
	for {
		idle := false // no one left to ask
		for inflight < l.p.alpha && valid < l.p.quorum && ctx.Err() == nil {
			p := ps.next(func(p peer.ID) claim { return l.claim(n, p) })
			if p == "" {
				idle = true
				break
			}
			inflight++
			go func() {
				start := time.Now()
				rec, closer, err := l.query(qctx, p)
				answers <- answer{p, rec, closer, err, time.Since(start)}
			}()
		}
		if inflight == 0 {
			cancel()
			return
		}
		var wait <-chan time.Time
		if idle && valid > 0 {
			d := max(stragglerMin, 3*slowest) - time.Since(lastAnswer)
			if straggler == nil {
				straggler = time.NewTimer(d)
			} else {
				straggler.Reset(d)
			}
			wait = straggler.C
		}
		var a answer
		select {
		case a = <-answers:
		case <-wait:
			leave()
			return
		case <-ctx.Done():
			leave()
			return
		}
		inflight--
		lastAnswer = time.Now()
		if a.err == nil {
			slowest = max(slowest, a.took)
		}
		if a.err != nil {
			ps.fail(a.p)
			continue
		}
		for _, c := range a.closer {
			if c != l.self {
				ps.add(c)
			}
		}
		if l.accept(a.rec) {
			if valid++; valid == l.p.quorum {
				cancel() // the path is done; end its queries still in flight
			}
		}
	}
}

// Candidate states along a path.
type candState uint8

const (
	fresh candState = iota
	asked
	failed
	other // another path has it
)

type candidate struct {
	id    peer.ID
	dist  []byte // XOR distance to the target
	state candState
}

// pathState is the candidates of one path, closest to the target first.
// It belongs to the path's goroutine.
type pathState struct {
	target kb.ID
	k      int
	cands  []*candidate
	known  map[peer.ID]*candidate
}

func newPathState(target kb.ID, k int) *pathState {
	return &pathState{target: target, k: k, known: map[peer.ID]*candidate{}}
}

// add inserts p in distance order unless the path knows it already.
func (s *pathState) add(p peer.ID) {
	if s.known[p] != nil {
		return
	}
	c := &candidate{id: p, dist: kb.Xor(kb.ConvertPeerID(p), s.target)}
	i, _ := slices.BinarySearchFunc(s.cands, c, func(a, b *candidate) int { return bytes.Compare(a.dist, b.dist) })
	s.cands = slices.Insert(s.cands, i, c)
	s.known[p] = c
}

func (s *pathState) fail(p peer.ID) {
	if c := s.known[p]; c != nil {
		c.state = failed
	}
}

// next returns the closest fresh candidate among the k closest that have
// not failed and that this path may ask, or "" if there is none.
func (s *pathState) next(claimFn func(peer.ID) claim) peer.ID {
	inView := 0
	for _, c := range s.cands {
		if inView == s.k {
			return ""
		}
		switch c.state {
		case failed, other:
			continue
		case asked:
			inView++
			continue
		}
		switch claimFn(c.id) {
		case taken:
			c.state = other
			continue
		case exhausted:
			return ""
		}
		c.state = asked
		return c.id
	}
	return ""
}

// getRecord finds the best valid record stored under key by a disjoint
// lookup. It fails with ErrNotFound if no path found a valid record.
func (n *Node) getRecord(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	val := Validator(n.cfg.Now)
	l := newDisjointLookup(defaultLookupParams(n.cfg.LookupPaths, n.cfg.BucketSize), key, n.host.ID(),
		n.queryValue(key), func(rec []byte) bool { return val.Validate(key, rec) == nil })
	recs := l.run(ctx, n.kad.RoutingTable().NearestPeers(kb.ConvertKey(key), n.cfg.BucketSize))
	if len(recs) == 0 {
		return nil, ErrNotFound
	}
	i, err := val.Select(key, recs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return recs[i], nil
}

// queryValue asks a peer for key with GET_VALUE. Addresses of the closer
// peers it names are kept for dialing them, but only for peers whose
// addresses we do not know already: a peer cannot replace what we know
// of another.
func (n *Node) queryValue(key string) queryFunc {
	return func(ctx context.Context, p peer.ID) ([]byte, []peer.ID, error) {
		rec, closer, err := n.msgr.GetValue(ctx, p, key)
		if err != nil {
			if ctx.Err() == nil {
				// As kad-dht does after a failed query: the peer is
				// gone or does not speak the protocol.
				n.kad.RoutingTable().RemovePeer(p)
			}
			return nil, nil, err
		}
		ps := n.host.Peerstore()
		ids := make([]peer.ID, 0, len(closer))
		for _, ai := range closer {
			if len(ps.Addrs(ai.ID)) == 0 {
				ps.AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
			}
			ids = append(ids, ai.ID)
		}
		if rec == nil {
			return nil, ids, nil
		}
		return rec.GetValue(), ids, nil
	}
}
