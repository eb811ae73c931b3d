package client

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
)

// Directory is where a client learns relays: the persistent descriptor
// cache that DHT sampling fills (*dht.Cache satisfies it). Paths are
// chosen from it alone, never from one DHT lookup per hop, which would
// tell the DHT the path.
type Directory interface {
	Relays() []*descriptor.Relay
}

// DirectoryFunc adapts a function to Directory.
type DirectoryFunc func() []*descriptor.Relay

// Relays calls f.
func (f DirectoryFunc) Relays() []*descriptor.Relay { return f() }

// PriceLimit is the most one relay of a path may charge, in msat; relays
// that charge more are never chosen.
type PriceLimit struct {
	PerMiB     uint64
	PerCircuit uint64
}

// allows reports whether p is within the limit; a nil limit allows any.
func (l *PriceLimit) allows(p descriptor.Price) bool {
	return l == nil || (p.PerMiB <= l.PerMiB && p.PerCircuit <= l.PerCircuit)
}

// ErrNoPath means no path of the descriptor cache meets the path rules:
// sample more relays, or relax the hop count, the price limit or the port.
var ErrNoPath = errors.New("client: no path meets the path rules (a guard first, an exit for the port, prices within the limit, no two relays in one /16 or family)")

// candidate is a relay that may appear in a path, with what the rules
// need worked out once.
type candidate struct {
	r    *descriptor.Relay
	key  [32]byte       // onion key valid now
	nets []netip.Prefix // the /16 of each IPv4 and /32 of each IPv6 address
	// natted: the relay is reached through a hole-punch rendezvous (its
	// addresses are /p2p-circuit ones, 02 §Reachability), so the network
	// it sits in is not known.
	natted bool
	first  peer.AddrInfo // the first usable address, for a first hop
	claim  uint64        // advertised bandwidth, at least 1, at most maxWeight
	// weight is the claim capped relative to the network, per position
	// (weigh); 0 where the relay may not be drawn.
	weight [positions]atomic.Uint64
}

// position is where in a path a relay is drawn. Each position has its own
// candidates and weights: a relay's share of a position is judged against
// the relays that compete for it, not against the whole view.
type position int

const (
	posGuard  position = iota // drawn into the guard set (guards.go)
	posMiddle                 // any relay
	posExit                   // relays with the exit role, old enough
	positions
)

// hop maps the candidate to a Hop of a path.
func (c *candidate) hop() Hop { return Hop{Peer: c.first, OnionKey: c.key} }

func (c *candidate) id() peer.ID { return c.r.PeerID }

// pathRules are the constraints of path selection (specs/10-client.md).
type pathRules struct {
	hops            int
	price           *PriceLimit
	allowSameSubnet bool   // local test networks only
	maxWeight       uint64 // cap on one relay's bandwidth weight
	usable          func(*descriptor.Relay) bool
	factor          func(peer.ID) float64 // observed capacity (capacity.go); nil: 1
	// exitAge reports whether a relay has been in the client's view long
	// enough to be an exit (guards.go); nil: any relay with the role.
	exitAge func(peer.ID, time.Time) bool
}

// candidates keeps the relays that have an onion key valid at now, an
// address, and a price within the limit.
func (pr pathRules) candidates(relays []*descriptor.Relay, now time.Time) []*candidate {
	return pr.candidatesFrom(relays, now, nil)
}

// candidatesFrom is candidates reusing, and updating, seen: the candidates
// made before from the same verified descriptors (which never change),
// weighed against each other (weigh).
func (pr pathRules) candidatesFrom(relays []*descriptor.Relay, now time.Time, seen map[*descriptor.Relay]*candidate) []*candidate {
	out := make([]*candidate, 0, len(relays))
	for _, r := range relays {
		k, ok := r.OnionKeyAt(now)
		if !ok || !r.Speaks(circuit.ProtocolVersion) || !pr.price.allows(r.Price) || (pr.usable != nil && !pr.usable(r)) {
			continue
		}
		c := seen[r]
		if c == nil || c.key != k.Key {
			c = pr.newCandidate(r, k.Key)
			if seen != nil {
				seen[r] = c
			}
		}
		if len(c.first.Addrs) > 0 {
			out = append(out, c)
		}
	}
	pr.weigh(out, now)
	return out
}

// shareCap bounds any relay's weight in a position by shareCap times the
// mean weight of the position's candidates. Then no set of relays, a
// fraction f of them, holds more than shareCap·f of the position's
// weight, whatever they claim and however the honest relays' claims are
// spread: 18 % for f = 10 % (specs/10-client.md §3.4).
const shareCap = 1.8

// weigh sets each candidate's weights for the middle and exit positions
// (guards are weighed when drawn, guardSet.fillLocked). Every relay is a
// middle candidate; the exit candidates are the relays with the exit role
// that exitAge accepts, and the others get no exit weight.
//
// A candidate's exit weight is its claim capped at the lower of the
// view's limit and the exits' (weightLimit): the exits' limit bounds the
// share of any set of exits by shareCap times their share of the exits,
// however the honest claims are spread between exits and other relays;
// the view's is the lower one when the exits hold more high claims than
// the view does, and a lower limit only lowers the share of the relays
// it caps.
//
// Candidates are shared by concurrent path choices, hence the atomic
// weights; two views weighed at once differ by a relay or two, and so do
// their limits.
func (pr pathRules) weigh(cands []*candidate, now time.Time) {
	var exits []*candidate
	isExit := make([]bool, len(cands))
	for i, c := range cands {
		if c.r.Roles.Has(descriptor.RoleExit) && (pr.exitAge == nil || pr.exitAge(c.id(), now)) {
			exits, isExit[i] = append(exits, c), true
		}
	}
	view := claimLimit(cands)
	exit := min(view, claimLimit(exits))
	for i, c := range cands {
		f := pr.factorOf(c)
		c.weight[posMiddle].Store(capped(c, view, f))
		var w uint64
		if isExit[i] {
			w = capped(c, exit, f)
		}
		c.weight[posExit].Store(w)
	}
}

// weighGuards sets the guard weights of pool, the relays that may become
// guards, capped at the lower of their limit and view's, as exits are.
func (pr pathRules) weighGuards(pool, view []*candidate) {
	limit := min(claimLimit(view), claimLimit(pool))
	for _, c := range pool {
		c.weight[posGuard].Store(capped(c, limit, pr.factorOf(c)))
	}
}

// factorOf is the observed-capacity factor of c (capacity.go).
func (pr pathRules) factorOf(c *candidate) float64 {
	if pr.factor == nil {
		return 1
	}
	return pr.factor(c.id())
}

// claimLimit is the weight limit of a set of candidates (weightLimit).
func claimLimit(set []*candidate) uint64 {
	claims := make([]uint64, len(set))
	for i, c := range set {
		claims[i] = c.claim
	}
	slices.Sort(claims)
	return weightLimit(claims, shareCap)
}

// capped is c's claim capped at limit, then scaled by factor (the
// capacity the client observed, at most 1), so that a relay that delivers
// less than it claims loses the share its claim bought. It is at least 1.
func capped(c *candidate, limit uint64, factor float64) uint64 {
	return max(uint64(float64(min(c.claim, limit))*factor), 1)
}

// weightLimit solves L = k/n · Σ min(c_i, L) for the n sorted claims c
// and k > 1: with j claims below L, L = k·(c_1+…+c_j) / (n − k·(n−j)).
// The cap is at least 1, so that every candidate keeps a weight.
func weightLimit(sorted []uint64, k float64) uint64 {
	n := float64(len(sorted))
	var prefix float64 // the sum of the j smallest claims
	for j := 0; j <= len(sorted); j++ {
		if den := n - k*(n-float64(j)); den > 0 {
			l := k * prefix / den
			below := j == 0 || l >= float64(sorted[j-1])
			above := j == len(sorted) || l <= float64(sorted[j])
			if below && above {
				return max(uint64(math.Ceil(l)), 1)
			}
		}
		if j < len(sorted) {
			prefix += float64(sorted[j])
		}
	}
	return math.MaxUint64 // no candidates
}

func (pr pathRules) newCandidate(r *descriptor.Relay, key [32]byte) *candidate {
	c := &candidate{r: r, key: key, claim: min(max(r.Bandwidth, 1), pr.maxWeight)}
	c.first.ID = r.PeerID
	for _, b := range r.Addrs {
		c.addAddr(b)
	}
	return c
}

// addAddr records an advertised address's network and keeps the first
// usable one for dialing.
func (c *candidate) addAddr(b []byte) {
	m, err := ma.NewMultiaddrBytes(b)
	if err != nil || len(m) == 0 {
		return
	}
	if _, err := m.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		c.natted = true // the network below is the rendezvous's
	}
	ip, ok := netip.AddrFromSlice(m[0].RawValue())
	if !ok || (m[0].Code() != ma.P_IP4 && m[0].Code() != ma.P_IP6) || ip.IsUnspecified() {
		return
	}
	bits := 16
	if ip.Unmap().Is6() {
		bits = 32
	}
	p, _ := ip.Unmap().Prefix(bits)
	if !slices.Contains(c.nets, p) {
		c.nets = append(c.nets, p)
	}
	if len(c.first.Addrs) == 0 {
		c.first.Addrs = []ma.Multiaddr{m}
	}
}

// related reports whether a and b must not share a path: the same relay,
// the same declared family (declared by either of them), an address in
// the same IPv4 /16 or IPv6 /32, or both reached through rendezvous. The
// network of a relay behind a NAT is unknown (its addresses are its
// rendezvous's), so any two such relays are taken to share one: else
// one operator's relays behind one NAT, each reserving at another
// rendezvous, would pass the /16 rule and fill a path.
func (pr pathRules) related(a, b *candidate) bool {
	if a.id() == b.id() || slices.Contains(a.r.Family, b.id()) || slices.Contains(b.r.Family, a.id()) {
		return true
	}
	if a.natted && b.natted {
		return true
	}
	if pr.allowSameSubnet {
		return false
	}
	for _, p := range a.nets {
		if slices.Contains(b.nets, p) {
			return true
		}
	}
	return false
}

// compatible reports whether c may join the chosen relays.
func (pr pathRules) compatible(c *candidate, chosen []*candidate) bool {
	for _, o := range chosen {
		if pr.related(c, o) {
			return false
		}
	}
	return true
}

// pathRequest says what a path is for.
type pathRequest struct {
	port   uint16           // the exit must accept it
	guards []*candidate     // usable guards, most preferred first
	avoid  map[peer.ID]bool // relays to leave out of this path
	soft   map[peer.ID]bool // exits to leave out if another will do
	rnd    *rand.Rand       // not safe for concurrent use
}

// attemptsPerGuard bounds the random draws tried with one guard before
// the next guard is tried.
const attemptsPerGuard = 8

// choose picks a path: the first hop from the guards, the exit weighted
// by bandwidth among those accepting the port, then the middle hops
// weighted by bandwidth, each compatible with every relay chosen before.
func (pr pathRules) choose(cands []*candidate, req *pathRequest) ([]*candidate, error) {
	for _, soft := range []bool{true, false} {
		if !soft && len(req.soft) == 0 {
			break
		}
		for _, g := range req.guards {
			if req.avoid[g.id()] {
				continue
			}
			for range attemptsPerGuard {
				if p := pr.tryPath(cands, g, req, soft); p != nil {
					return p, nil
				}
			}
		}
	}
	return nil, ErrNoPath
}

// tryPath draws one path through guard g, or nil if a draw found no relay
// for some position.
func (pr pathRules) tryPath(cands []*candidate, g *candidate, req *pathRequest, soft bool) []*candidate {
	path := []*candidate{g}
	if pr.hops == 1 {
		if pr.isExit(g, req, soft) {
			return path
		}
		return nil
	}
	exit := pr.pick(cands, path, req, posExit, func(c *candidate) bool { return pr.isExit(c, req, soft) })
	if exit == nil {
		return nil
	}
	path = append(path, exit)
	for len(path) < pr.hops {
		m := pr.pick(cands, path, req, posMiddle, func(*candidate) bool { return true })
		if m == nil {
			return nil
		}
		path = append(path, m)
	}
	// path is guard, exit, middles...: put the exit last.
	path = append(append(path[:1:1], path[2:]...), exit)
	return path
}

// isExit reports whether c may be the exit of req: it accepts the port
// and has an exit weight (it is old enough, weigh).
func (pr pathRules) isExit(c *candidate, req *pathRequest, soft bool) bool {
	return c.weight[posExit].Load() > 0 && c.r.AcceptsPort(req.port) && !(soft && req.soft[c.id()])
}

// pick draws one relay weighted by its capped bandwidth in position pos
// among those that pass ok, are not avoided and are compatible with
// chosen.
func (pr pathRules) pick(cands, chosen []*candidate, req *pathRequest, pos position, ok func(*candidate) bool) *candidate {
	var total uint64
	eligible := make([]*candidate, 0, len(cands))
	weights := make([]uint64, 0, len(cands)) // as read once: weigh may run meanwhile
	for _, c := range cands {
		if ok(c) && !req.avoid[c.id()] && pr.compatible(c, chosen) {
			w := c.weight[pos].Load()
			eligible, weights = append(eligible, c), append(weights, w)
			total += w
		}
	}
	if total == 0 {
		return nil
	}
	x := req.rnd.Uint64N(total)
	for i, c := range eligible {
		if x < weights[i] {
			return c
		}
		x -= weights[i]
	}
	return nil
}

// hops maps a chosen path to the Hops that Build takes.
func hops(path []*candidate) []Hop {
	out := make([]Hop, len(path))
	for i, c := range path {
		out[i] = c.hop()
	}
	return out
}
