package hidden

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

// Every hidden-service circuit has three hops: a guard from the guard set,
// a random middle and the relay that plays the role (fetch, intro,
// rendezvous), all distinct.
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
// what last must offer when chosen here (last == nil). The first hop
// comes from the guard set, the middle is random.
func (n *Network) pathTo(last *client.Hop, role descriptor.Role, exclude map[peer.ID]bool) ([]client.Hop, error) {
	now := n.Now()
	var guards, ends []client.Hop
	for _, r := range n.Directory.Relays() {
		h, ok := hopFor(r, now)
		if !ok || exclude[r.PeerID] {
			continue
		}
		if r.Roles.Has(descriptor.RoleGuard) && len(h.Peer.Addrs) > 0 {
			guards = append(guards, h)
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
	g, ok := n.guards.pick(guards, last.Peer.ID)
	if !ok {
		return nil, ErrNoRelays
	}
	rand.Shuffle(len(guards), func(i, j int) { guards[i], guards[j] = guards[j], guards[i] })
	for _, m := range guards {
		if m.Peer.ID != last.Peer.ID && m.Peer.ID != g.Peer.ID {
			return []client.Hop{g, m, *last}, nil
		}
	}
	return nil, ErrNoRelays
}

// guardSet keeps the first hops of one client or service: a small set
// chosen once and kept while the relays stay in the directory, so that a
// peer who makes the service build many circuits (rendezvous on demand)
// does not get to be its first hop by chance.
type guardSet struct {
	file   string // where the set persists; "" keeps it in memory
	logger *slog.Logger

	mu     sync.Mutex // guards the fields below
	ids    []peer.ID
	loaded bool
}

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
	var ids []string
	if err == nil {
		err = json.Unmarshal(b, &ids)
	}
	if err != nil {
		s.logger.Warn("hidden-service guard file unreadable; choosing new guards", "err", err)
		return
	}
	for _, v := range ids {
		if id, err := peer.Decode(v); err == nil && len(s.ids) < guardSetSize {
			s.ids = append(s.ids, id)
		}
	}
}

// save writes the set if it changed; mu is held.
func (s *guardSet) save(before []peer.ID) {
	if s.file == "" || slices.Equal(before, s.ids) {
		return
	}
	ids := make([]string, len(s.ids))
	for i, id := range s.ids {
		ids[i] = id.String()
	}
	b, _ := json.Marshal(ids)
	tmp := s.file + ".tmp"
	err := os.WriteFile(tmp, b, 0o600)
	if err == nil {
		err = os.Rename(tmp, s.file)
	}
	if err != nil {
		s.logger.Warn("hidden-service guards not saved", "err", err)
	}
}

// guardSetSize is how many guards a client or service keeps.
const guardSetSize = 2

// warmDirectory is how many guard candidates a directory must hold before
// a guard missing from it is taken to be gone.
const warmDirectory = 3 * guardSetSize

// pick returns a guard of the set (refilled from cands) that is not
// avoid.
func (s *guardSet) pick(cands []client.Hop, avoid peer.ID) (client.Hop, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	before := slices.Clone(s.ids)
	defer s.save(before)
	byID := map[peer.ID]client.Hop{}
	for _, c := range cands {
		byID[c.Peer.ID] = c
	}
	var present []peer.ID
	for _, id := range s.ids {
		if _, ok := byID[id]; ok {
			present = append(present, id)
		}
	}
	// A guard missing from the directory has left the network — unless
	// the directory is still filling (a cold cache after a restart):
	// then a persisted guard is kept, though not used, while another is.
	if len(present) == 0 || len(cands) >= warmDirectory {
		s.ids = present
	}
	for _, i := range rand.Perm(len(cands)) {
		if len(s.ids) >= guardSetSize {
			break
		}
		if id := cands[i].Peer.ID; !slices.Contains(s.ids, id) {
			s.ids = append(s.ids, id)
		}
	}
	var usable []peer.ID
	for _, id := range s.ids {
		if _, ok := byID[id]; ok && id != avoid {
			usable = append(usable, id)
		}
	}
	if len(usable) == 0 {
		return client.Hop{}, false
	}
	return byID[usable[rand.IntN(len(usable))]], true
}

// build builds a circuit through path within the build timeout, and
// starts paying it if the network pays.
func (n *Network) build(ctx context.Context, path []client.Hop) (*client.Circuit, error) {
	c, _, err := n.buildWith(ctx, path, nil)
	return c, err
}

// buildWith is build with a request for the last hop riding behind the
// CREATE (0-RTT): early, given the circuit's control before anything is
// sent, registers what it waits for and returns the request's cells. The
// control is returned with the circuit (nil without early).
func (n *Network) buildWith(ctx context.Context, path []client.Hop, early func(*control) []circuit.RelayCell) (*client.Circuit, *control, error) {
	var pay client.PayConfig
	if n.Pay != nil {
		var err error
		if pay, err = n.Pay(n.descriptors(path)); err != nil {
			return nil, nil, fmt.Errorf("hidden: cannot pay the path: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, n.BuildTimeout)
	defer cancel()
	var k *control
	c, err := client.BuildPrepared(ctx, n.Links, path, func(c *client.Circuit) ([]circuit.RelayCell, error) {
		if early == nil {
			return nil, nil
		}
		k = attach(c)
		return early(k), nil
	})
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
func (n *Network) descriptors(path []client.Hop) []*descriptor.Relay {
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
func (n *Network) buildTo(ctx context.Context, last *client.Hop, role descriptor.Role, exclude map[peer.ID]bool) (*client.Circuit, error) {
	c, _, err := n.buildToWith(ctx, last, role, exclude, nil)
	return c, err
}

// buildToWith is buildTo with a 0-RTT request for the last hop (buildWith).
func (n *Network) buildToWith(ctx context.Context, last *client.Hop, role descriptor.Role, exclude map[peer.ID]bool,
	early func(*control) []circuit.RelayCell) (*client.Circuit, *control, error) {
	path, err := n.pathTo(last, role, exclude)
	if err != nil {
		return nil, nil, err
	}
	return n.buildWith(ctx, path, early)
}
