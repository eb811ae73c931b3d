package client

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
)

// Circuits the manager does not build itself — a node's hidden-service
// circuits, whose later hops follow rules of their own (vanguards) —
// take their first hop and their limits from it, so that a node has one
// guard set and one price limit whatever its circuits are for.

// EntryGuards returns the guards a circuit may start at now, most
// preferred first (those waiting to be retried after a failure last),
// filling the guard set first if it is short. Report what became of a
// first link to one of them with GuardReached.
func (m *CircuitManager) EntryGuards() []Hop {
	now := m.cfg.Now()
	cands := m.candidates(now)
	if len(m.guards.IDs()) < m.cfg.Guards || m.guards.noHistory() {
		m.refreshGuards(cands, now)
		cands = m.candidates(now)
	}
	return hops(m.guards.usable(cands, now))
}

// GuardReached records whether a link to guard id, opened for a circuit
// the manager did not build, came up: a guard that cannot be reached is
// retried later and, if it stays down, replaced, as for the manager's
// own circuits. Relays that are not guards of the set are ignored.
func (m *CircuitManager) GuardReached(id peer.ID, ok bool) {
	if !m.guards.isGuard(id) {
		return
	}
	if ok {
		m.guards.succeeded(id, m.cfg.Now())
	} else {
		m.guards.failed(id, m.cfg.Now())
	}
}

// Admits reports whether the manager's own paths could hold relay r: it
// speaks the circuit protocol, has an onion key valid now, charges within
// the price limit, and Config.Usable (the payer) takes it.
func (m *CircuitManager) Admits(r *descriptor.Relay) bool {
	if r == nil {
		return false
	}
	_, ok := r.OnionKeyAt(m.cfg.Now())
	return ok && r.Speaks(circuit.ProtocolVersion) && m.rules.price.allows(r.Price) &&
		(m.rules.usable == nil || m.rules.usable(r))
}

// GuardBuilt counts, in guard id's path bias (specs/10-client.md §4.6),
// the build of a circuit the manager did not build, once a link to the
// guard was up: ok if the circuit was built. Count only circuits whose
// every relay the node chose itself: one whose last hop another party
// named (a rendezvous point a client chose, an intro point of a
// descriptor) could be made to fail by that party, to frame the guard.
// Relays that are not guards of the set are ignored.
func (m *CircuitManager) GuardBuilt(id peer.ID, ok bool) {
	if !m.guards.isGuard(id) {
		return
	}
	m.countBuild(id, ok)
}
