package hidden

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

// Every hidden-service circuit has three hops: a guard from the guard set,
// a vanguard and the relay that plays the role (fetch, intro,
// rendezvous), all distinct.
const pathLen = 3

func hopFor(r *descriptor.Relay, now time.Time) (client.Hop, bool) {
	k, ok := r.OnionKeyAt(now)
	if !ok || !r.Speaks(circuit.ProtocolVersion) {
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

// pathTo returns a three-hop path ending at last: a guard, a vanguard
// (guards.go) and last. role, if not zero, is what last must offer when
// chosen here (last == nil), from the relays not in exclude.
func (n *Config) pathTo(last *client.Hop, role descriptor.Role, exclude map[peer.ID]bool) ([]client.Hop, error) {
	now := n.Now()
	var guards, ends []client.Hop
	var prefer func(peer.ID) bool
	byID := map[peer.ID]*descriptor.Relay{}
	if n.prefer != nil {
		prefer = func(id peer.ID) bool { r := byID[id]; return r != nil && n.prefer(r) }
	}
	for _, r := range n.Directory.Relays() {
		h, ok := hopFor(r, now)
		if !ok {
			continue
		}
		if n.Entry != nil && !n.Entry.Admits(r) {
			if last != nil && r.PeerID == last.Peer.ID && n.Pay != nil && !n.lastUnpaid {
				return nil, fmt.Errorf("%w: %s", ErrNotAdmitted, r.PeerID)
			}
			continue
		}
		byID[r.PeerID] = r
		// Every guard-capable relay, excluded or not: the guard set
		// takes a relay missing from this list to be missing from the
		// directory.
		if r.Roles.Has(descriptor.RoleGuard) && len(h.Peer.Addrs) > 0 {
			guards = append(guards, h)
		}
		if last == nil && r.Roles.Has(role) && !exclude[r.PeerID] {
			ends = append(ends, h)
		}
	}
	// exclude narrows the choice of the last hop only: the guard and
	// vanguard layers are fixed sets, and leaving out every relay that
	// already serves the service (its intro points) would soon leave none
	// of them usable.
	if last != nil {
		g, v, ok := n.guards.pick(guards, n.Entry, map[peer.ID]bool{last.Peer.ID: true}, prefer)
		if !ok {
			return nil, ErrNoRelays
		}
		return []client.Hop{g, v, *last}, nil
	}
	// The last hop is ours to choose: the guard and vanguard first, then
	// a last hop other than them. Chosen the other way round, a last hop
	// that happened to be the one guard listed (the other one missing)
	// left no path at all.
	if g, v, ok := n.guards.pick(guards, n.Entry, nil, prefer); ok {
		others := slices.DeleteFunc(slices.Clone(ends), func(h client.Hop) bool {
			return h.Peer.ID == g.Peer.ID || h.Peer.ID == v.Peer.ID
		})
		if len(others) > 0 {
			return []client.Hop{g, v, others[rand.IntN(len(others))]}, nil
		}
	}
	// Only the guard or vanguard offer the role: the last hop first, and
	// the guard layers around it.
	if len(ends) == 0 {
		return nil, fmt.Errorf("%w: none offers %v", ErrNoRelays, role)
	}
	e := ends[rand.IntN(len(ends))]
	g, v, ok := n.guards.pick(guards, n.Entry, map[peer.ID]bool{e.Peer.ID: true}, prefer)
	if !ok {
		return nil, ErrNoRelays
	}
	return []client.Hop{g, v, e}, nil
}

// build builds a circuit through path within the build timeout, and
// starts paying it if the network pays.
func (n *Config) build(ctx context.Context, path []client.Hop) (*client.Circuit, error) {
	c, _, err := n.buildWith(ctx, path, true, nil)
	return c, err
}

// buildWith is build with a request for the last hop riding behind the
// CREATE (0-RTT): early, given the circuit's control before anything is
// sent, registers what it waits for and returns the request's cells. The
// control is returned with the circuit (nil without early). chosen says
// that the node chose every relay of path, so that the build counts in
// its guard's path bias (Entry.GuardBuilt).
func (n *Config) buildWith(ctx context.Context, path []client.Hop, chosen bool, early func(*control) []circuit.RelayCell) (*client.Circuit, *control, error) {
	var pay client.PayConfig
	if n.Pay != nil {
		var err error
		if pay, err = n.Pay(n.descriptors(path)); err != nil {
			return nil, nil, fmt.Errorf("hidden: cannot pay the path: %w", err)
		}
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, n.BuildTimeout)
	defer cancel()
	if n.Entry != nil && len(path) > 0 {
		// The first link, opened here (BuildPrepared finds it open), tells
		// the node's guard set whether its guard is up, as its own
		// circuits' builds do.
		_, err := n.Links.Channel(ctx, path[0].Peer)
		if ctx.Err() == nil {
			n.Entry.GuardReached(path[0].Peer.ID, err == nil)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("hidden: first hop unreachable: %w", err)
		}
	}
	var k *control
	c, err := client.BuildPrepared(ctx, n.Links, n.createTime(), path, func(c *client.Circuit) ([]circuit.RelayCell, error) {
		if early == nil {
			return nil, nil
		}
		k = attach(c)
		return early(k), nil
	})
	if n.Entry != nil && chosen && outer.Err() == nil {
		n.Entry.GuardBuilt(path[0].Peer.ID, err == nil)
	}
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, nil, err
	}
	if n.Pay != nil {
		if err := client.PayFor(c, pay, n.Logger, nil); err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	return c, k, nil
}

// descriptors are the directory's descriptors of path's relays, nil
// where it has none.
func (n *Config) descriptors(path []client.Hop) []*descriptor.Relay {
	out := make([]*descriptor.Relay, len(path))
	for _, r := range n.Directory.Relays() {
		for i, h := range path {
			if h.Peer.ID == r.PeerID {
				out[i] = r
			}
		}
	}
	return out
}

// buildTo builds a three-hop circuit to a relay offering role (or to last).
func (n *Config) buildTo(ctx context.Context, last *client.Hop, role descriptor.Role, exclude map[peer.ID]bool) (*client.Circuit, error) {
	c, _, err := n.buildToWith(ctx, last, role, exclude, nil)
	return c, err
}

// buildToWith is buildTo with a 0-RTT request for the last hop (buildWith).
func (n *Config) buildToWith(ctx context.Context, last *client.Hop, role descriptor.Role, exclude map[peer.ID]bool,
	early func(*control) []circuit.RelayCell) (*client.Circuit, *control, error) {
	path, err := n.pathTo(last, role, exclude)
	if err != nil {
		return nil, nil, err
	}
	return n.buildWith(ctx, path, last == nil, early)
}
