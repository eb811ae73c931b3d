package hidden

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

// Every hidden-service circuit has three hops: a guard, a middle and the
// relay that plays the role (fetch, intro, rendezvous). The first two are
// chosen at random among usable relays, distinct from the last.
const pathLen = 3

func hopFor(r *descriptor.Relay, now time.Time) (client.Hop, bool) {
	k, ok := r.OnionKeyAt(now)
	if !ok {
		return client.Hop{}, false
	}
	h := client.Hop{Peer: peer.AddrInfo{ID: r.PeerID}, OnionKey: k.Key}
	for _, b := range r.Addrs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			h.Peer.Addrs = append(h.Peer.Addrs, a)
		}
	}
	return h, true
}

// pathTo returns a three-hop path ending at last. role, if not zero, is
// what last must offer when chosen here (last == nil).
func (n *Network) pathTo(last *client.Hop, role descriptor.Role, exclude map[peer.ID]bool) ([]client.Hop, error) {
	now := n.Now()
	var cands []client.Hop
	var ends []client.Hop
	for _, r := range n.Directory.Relays() {
		h, ok := hopFor(r, now)
		if !ok || exclude[r.PeerID] || (last != nil && r.PeerID == last.Peer.ID) {
			continue
		}
		if r.Roles.Has(descriptor.RoleGuard) && len(h.Peer.Addrs) > 0 {
			cands = append(cands, h)
		}
		if last == nil && r.Roles.Has(role) {
			ends = append(ends, h)
		}
	}
	if last == nil {
		if len(ends) == 0 {
			return nil, fmt.Errorf("%w: none offers %v", ErrNoRelays, role)
		}
		e := ends[rand.IntN(len(ends))]
		last = &e
	}
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	path := make([]client.Hop, 0, pathLen)
	for _, c := range cands {
		if c.Peer.ID != last.Peer.ID && len(path) < pathLen-1 {
			path = append(path, c)
		}
	}
	if len(path) < pathLen-1 {
		return nil, ErrNoRelays
	}
	return append(path, *last), nil
}

// build builds a circuit through path within the build timeout.
func (n *Network) build(ctx context.Context, path []client.Hop) (*client.Circuit, error) {
	ctx, cancel := context.WithTimeout(ctx, n.BuildTimeout)
	defer cancel()
	return client.Build(ctx, n.Links, path)
}

// buildTo builds a three-hop circuit to a relay offering role (or to last).
func (n *Network) buildTo(ctx context.Context, last *client.Hop, role descriptor.Role, exclude map[peer.ID]bool) (*client.Circuit, error) {
	path, err := n.pathTo(last, role, exclude)
	if err != nil {
		return nil, err
	}
	return n.build(ctx, path)
}
