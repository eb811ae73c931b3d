package dht

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
)

// simNet is a network of peers answering GET_VALUE in memory: honest
// peers return the fresh record if they are among the k closest to the
// key and the k peers closest to the key they know; Sybils return a stale
// record (or none) and only other Sybils as closer peers.
type simNet struct {
	key    string
	k      int
	honest []peer.ID
	sybil  map[peer.ID]bool

	mu    sync.Mutex
	asked map[peer.ID]int
}

var (
	freshRec = []byte("fresh")
	staleRec = []byte("stale")
)

func (s *simNet) all() []peer.ID {
	out := slices.Clone(s.honest)
	for p := range s.sybil {
		out = append(out, p)
	}
	return out
}

func (s *simNet) closest(ps []peer.ID, n int) []peer.ID {
	ps = kb.SortClosestPeers(ps, kb.ConvertKey(s.key))
	return ps[:min(n, len(ps))]
}

func (s *simNet) query(_ context.Context, p peer.ID) ([]byte, []peer.ID, error) {
	s.mu.Lock()
	s.asked[p]++
	s.mu.Unlock()
	if s.sybil[p] {
		var sy []peer.ID
		for q := range s.sybil {
			sy = append(sy, q)
		}
		return staleRec, s.closest(sy, s.k), nil
	}
	var rec []byte
	if slices.Contains(s.closest(s.all(), s.k), p) {
		rec = freshRec
	}
	return rec, s.closest(s.all(), s.k), nil
}

// simPeer is a random peer ID; the lookup only hashes IDs.
func simPeer() peer.ID {
	b := make([]byte, 32)
	rand.Read(b)
	return peer.ID(b)
}

// newSimNet builds honest peers and sybils Sybils, near of which sit next
// to the key (sharing at least 8 bits with it) and the rest anywhere.
func newSimNet(honest, sybils, near, k int) *simNet {
	s := &simNet{key: string(simPeer()), k: k, sybil: map[peer.ID]bool{}, asked: map[peer.ID]int{}}
	for range honest {
		s.honest = append(s.honest, simPeer())
	}
	target := kb.ConvertKey(s.key)
	for len(s.sybil) < near {
		if p := simPeer(); kb.CommonPrefixLen(kb.ConvertPeerID(p), target) >= 8 {
			s.sybil[p] = true
		}
	}
	for len(s.sybil) < sybils {
		s.sybil[simPeer()] = true
	}
	return s
}

func (s *simNet) near(n int) []peer.ID {
	var sy []peer.ID
	for p := range s.sybil {
		sy = append(sy, p)
	}
	return s.closest(sy, n)
}

func (s *simNet) lookup(paths int, seeds []peer.ID) [][]byte {
	l := newDisjointLookup(defaultLookupParams(paths, s.k), s.key, "", s.query,
		func([]byte) bool { return true })
	return l.run(context.Background(), seeds)
}

// Each peer is asked by one path at most, the lookup stays within its
// budget, and it finds the record.
func TestDisjointLookupPathsDisjoint(t *testing.T) {
	s := newSimNet(200, 0, 0, 20)
	seeds := s.closest(s.honest[:60], 20) // a table that knows 60 peers
	recs := s.lookup(3, seeds)
	if !slices.ContainsFunc(recs, func(r []byte) bool { return bytes.Equal(r, freshRec) }) {
		t.Fatal("record not found")
	}
	total := 0
	for p, n := range s.asked {
		if n > 1 {
			t.Fatalf("peer %s asked %d times", p, n)
		}
		total += n
	}
	if total > 3*maxQueriesPerPath {
		t.Fatalf("%d peers asked, budget %d", total, 3*maxQueriesPerPath)
	}
}

// 20% Sybils, 5 of them nearest to the key, return a stale record and
// only each other as closer peers. They capture a single walk, which asks
// the closest peers first; of three disjoint paths, each holds only some
// of them and goes on to the honest holders.
func TestDisjointLookupEscapesEclipse(t *testing.T) {
	found := map[int]int{}
	const trials = 200
	for range trials {
		for _, paths := range []int{1, 3} {
			s := newSimNet(100, 25, 5, 20)
			// A table that knows 40 honest peers and the near Sybils.
			seeds := s.closest(append(s.near(5), s.honest[:40]...), 20)
			if slices.ContainsFunc(s.lookup(paths, seeds), func(r []byte) bool { return bytes.Equal(r, freshRec) }) {
				found[paths]++
			}
		}
	}
	t.Logf("fresh record found: 1 path %d/%d, 3 disjoint paths %d/%d", found[1], trials, found[3], trials)
	if found[3] < found[1] || found[3]*100 < 95*trials {
		t.Fatalf("disjoint lookup found the fresh record in %d of %d", found[3], trials)
	}
}

// A lookup whose peers all fail ends, having asked each once.
func TestDisjointLookupAllFail(t *testing.T) {
	s := newSimNet(50, 0, 0, 20)
	l := newDisjointLookup(defaultLookupParams(3, 20), s.key, "", func(ctx context.Context, p peer.ID) ([]byte, []peer.ID, error) {
		s.query(ctx, p)
		return nil, nil, errors.New("unreachable")
	}, func([]byte) bool { return true })
	if recs := l.run(context.Background(), s.closest(s.honest, 20)); len(recs) != 0 {
		t.Fatal("records from failed peers")
	}
	if len(s.asked) != 20 {
		t.Fatalf("asked %d of 20 seeds", len(s.asked))
	}
}

// A peer that has gone never answers: its query ends only at its own
// timeout. A path that holds the record and has no one else to ask stops
// without it, and the lookup ends with the record, though nothing bounds
// its context. The dead peer's query is left to run to its timeout, not
// cancelled, so that its failure is seen (queryValue then drops the peer
// from the routing table).
func TestDisjointLookupLeavesDeadPeer(t *testing.T) {
	s := newSimNet(8, 0, 0, 20) // fewer holders than paths × quorum
	dead := s.closest(s.honest, 1)[0]
	timeout := make(chan struct{})       // the dead peer's RPC timeout
	cancelledEarly := make(chan bool, 1) // whether its context had ended
	l := newDisjointLookup(defaultLookupParams(3, 20), s.key, "", func(ctx context.Context, p peer.ID) ([]byte, []peer.ID, error) {
		if p == dead {
			select {
			case <-timeout:
				cancelledEarly <- false
			case <-ctx.Done():
				cancelledEarly <- true
			}
			return nil, nil, errors.New("timed out")
		}
		return s.query(ctx, p)
	}, func([]byte) bool { return true })
	done := make(chan [][]byte, 1)
	go func() { done <- l.run(context.Background(), s.closest(s.honest, 20)) }()
	select {
	case recs := <-done:
		if !slices.ContainsFunc(recs, func(r []byte) bool { return bytes.Equal(r, freshRec) }) {
			t.Fatal("record not found")
		}
	case <-time.After(time.Minute):
		t.Fatal("the lookup waits for a peer that never answers")
	}
	close(timeout)
	if <-cancelledEarly {
		t.Fatal("the dead peer's query was cancelled: its failure goes unseen")
	}
}

// A path without a valid record waits for a slow peer: the only holder
// answers long after the others, and its record is found.
func TestDisjointLookupWaitsForSlowHolder(t *testing.T) {
	s := newSimNet(30, 0, 0, 20)
	holder := s.closest(s.honest, 1)[0]
	l := newDisjointLookup(defaultLookupParams(3, 20), s.key, "", func(ctx context.Context, p peer.ID) ([]byte, []peer.ID, error) {
		_, closer, err := s.query(ctx, p)
		if p != holder {
			return nil, closer, err
		}
		select {
		case <-time.After(10 * stragglerMin):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		return freshRec, closer, err
	}, func([]byte) bool { return true })
	recs := l.run(context.Background(), s.closest(s.honest, 20))
	if !slices.ContainsFunc(recs, func(r []byte) bool { return bytes.Equal(r, freshRec) }) {
		t.Fatal("the slow holder's record was not waited for")
	}
}
