package dht

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// ErrShortSample means fewer relays than asked for were found; the ones
// found are returned with it.
var ErrShortSample = errors.New("dht: sample found fewer relays than asked")

// sampleFetchers bounds the descriptor fetches a Sample runs at once.
const sampleFetchers = 8

// Sample returns up to k distinct verified relay descriptors that pass
// filter (nil accepts all), found by parallel random walks toward random
// keys; every descriptor found is also put into cache (which may be nil).
// Relays are taken uniformly from the union of the walks' results, so no
// relay is favoured by where its ID falls in the key space.
func (n *Node) Sample(ctx context.Context, k int, cache *Cache, filter func(*descriptor.Relay) bool) ([]*descriptor.Relay, error) {
	if k <= 0 {
		return nil, nil
	}
	cands, err := n.randomWalks(ctx, 2+k/10)
	if err != nil {
		return nil, err
	}
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	found := n.fetchUntil(ctx, cands, k, cache, filter)
	if len(found) < k {
		return found, fmt.Errorf("%w: %d of %d", ErrShortSample, len(found), k)
	}
	return found, nil
}

// pastHalfLife reports whether a descriptor has lived half its lifetime.
func pastHalfLife(r *descriptor.Relay, now time.Time) bool {
	return now.Unix() >= r.Published+(r.Expires-r.Published)/2
}

// Refresh looks up again every cached descriptor past half its lifetime,
// a few at a time, so that the relays a client knows — its guards among
// them — stay known while they keep republishing. It returns how many
// were renewed; a relay that stopped publishing keeps its descriptor
// until it expires.
func (n *Node) Refresh(ctx context.Context, cache *Cache) int {
	now := n.cfg.Now()
	var stale []peer.ID
	for _, r := range cache.Relays() {
		if pastHalfLife(r, now) {
			stale = append(stale, r.PeerID)
		}
	}
	renewed := 0
	for _, r := range n.fetchBatch(ctx, stale, cache) {
		if r != nil && !pastHalfLife(r, now) {
			renewed++
		}
	}
	return renewed
}

// randomWalks runs w walks toward random keys at once and returns the
// distinct peers they end at, without this node.
func (n *Node) randomWalks(ctx context.Context, w int) ([]peer.ID, error) {
	var (
		mu      sync.Mutex
		seen    = map[peer.ID]bool{n.host.ID(): true}
		out     []peer.ID
		lastErr error
		wg      sync.WaitGroup
	)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := make([]byte, 32)
			crand.Read(key)
			ps, err := n.closestPeers(ctx, string(key))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
			}
			for _, p := range ps {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
		}()
	}
	wg.Wait()
	if len(out) == 0 && lastErr != nil {
		return nil, fmt.Errorf("dht: random walk: %w", lastErr)
	}
	return out, nil
}

// fetchUntil resolves candidates to descriptors until k pass the filter or
// the candidates run out. It works in candidate order, a batch at a time,
// so that which relays are returned does not depend on which answered
// first (cached relays answer first and would otherwise crowd out the
// rest).
func (n *Node) fetchUntil(ctx context.Context, cands []peer.ID, k int, cache *Cache, filter func(*descriptor.Relay) bool) []*descriptor.Relay {
	var out []*descriptor.Relay
	for len(out) < k && len(cands) > 0 && ctx.Err() == nil {
		batch := cands[:min(k-len(out), len(cands))]
		cands = cands[len(batch):]
		for _, r := range n.fetchBatch(ctx, batch, cache) {
			if r != nil && (filter == nil || filter(r)) {
				out = append(out, r)
			}
		}
	}
	return out
}

// fetchBatch resolves ids at once (at most sampleFetchers in flight); the
// result at index i is ids[i]'s descriptor or nil.
func (n *Node) fetchBatch(ctx context.Context, ids []peer.ID, cache *Cache) []*descriptor.Relay {
	res := make([]*descriptor.Relay, len(ids))
	sem := make(chan struct{}, sampleFetchers)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			res[i] = n.fetch(ctx, id, cache)
		}()
	}
	wg.Wait()
	return res
}

// fetch returns id's descriptor from the cache or the DHT, or nil. A
// cached descriptor past half its lifetime is looked up again (the relay
// has republished it by then): otherwise every descriptor sampled at a
// client's start would expire at the same moment, and its guards with
// them. If that lookup fails, the cached one serves until it expires.
func (n *Node) fetch(ctx context.Context, id peer.ID, cache *Cache) *descriptor.Relay {
	var cached *descriptor.Relay
	if cache != nil {
		if r, ok := cache.Get(id); ok {
			if !pastHalfLife(r, n.cfg.Now()) {
				return r
			}
			cached = r
		}
	}
	r, rec, err := n.LookupRelay(ctx, id)
	if err != nil {
		return cached
	}
	if cache != nil {
		if cr, err := cache.Put(rec); err == nil {
			return cr
		}
	}
	return r
}
