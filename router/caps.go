package router

import (
	"runtime/metrics"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/link"
)

// Defaults of the per-peer and per-channel circuit caps. A previous hop
// that is a relay carries many clients' circuits, so the caps are far above
// what one client needs (a few dozen) and well below MaxCircuits: a single
// peer cannot hold the relay's whole circuit table, whatever its rate.
const (
	DefaultMaxCircuitsPerPeer    = 2500
	DefaultMaxCircuitsPerChannel = 1500
)

// DefaultMinIdleTimeout is the idle timeout under full pressure (see
// idleTimeout).
const DefaultMinIdleTimeout = time.Minute

// circuitCaps counts the circuits of each previous peer and channel and
// refuses one over a cap. It is not safe for concurrent use: the router
// holds r.mu.
type circuitCaps struct {
	perPeer, perChannel, perRelay int
	peers                         map[peer.ID]int
	channels                      map[*link.Channel]int
}

func newCircuitCaps(perPeer, perChannel, perRelay int) *circuitCaps {
	return &circuitCaps{perPeer: perPeer, perChannel: perChannel, perRelay: perRelay,
		peers: map[peer.ID]int{}, channels: map[*link.Channel]int{}}
}

// admit counts a new circuit from p on ch, or reports false if either is
// at its cap: a relay's (perRelay, over all its channels) if p is a
// relay, a client's (perPeer, perChannel) otherwise.
func (c *circuitCaps) admit(p peer.ID, ch *link.Channel, relay bool) bool {
	switch {
	case relay && c.peers[p] >= c.perRelay:
		return false
	case !relay && (c.peers[p] >= c.perPeer || c.channels[ch] >= c.perChannel):
		return false
	}
	c.peers[p]++
	c.channels[ch]++
	return true
}

// release uncounts a circuit admitted from p on ch.
func (c *circuitCaps) release(p peer.ID, ch *link.Channel) {
	if c.peers[p]--; c.peers[p] <= 0 {
		delete(c.peers, p)
	}
	if c.channels[ch]--; c.channels[ch] <= 0 {
		delete(c.channels, ch)
	}
}

// idleTimeout is the idle timeout at a pressure (0: idle relay, 1: full):
// the configured timeout up to half pressure, then shrinking linearly to
// the minimum at full pressure, so that abandoned circuits make room
// before the relay refuses new ones.
func idleTimeout(full, least time.Duration, pressure float64) time.Duration {
	switch {
	case pressure <= 0.5:
		return full
	case pressure >= 1:
		return least
	}
	return full - time.Duration(float64(full-least)*(pressure-0.5)/0.5)
}

// pressure is the larger of the circuit table's and the heap's occupancy.
func (r *Router) pressure(circuits int) float64 {
	p := float64(circuits) / float64(r.cfg.MaxCircuits)
	if r.cfg.MemoryBudget > 0 {
		p = max(p, float64(r.cfg.MemoryInUse())/float64(r.cfg.MemoryBudget))
	}
	return p
}

// heapInUse returns the bytes of live and unswept heap objects.
func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
