package hidden

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

// StandbyPayer pays a hidden service's rendezvous circuits from channels
// funded in advance to its guards and vanguards (pay.Standby is one), so
// that the service makes no mint request in answer to an introduction
// (specs/05-payment.md §7.13).
type StandbyPayer interface {
	// Stock names the relays to keep channels ready for: the service's
	// guards and vanguards. It makes no mint request.
	Stock(relays []*descriptor.Relay)
	// Pay says how to pay a rendezvous circuit's path, as Config.Pay
	// does, without a mint request: the first hops from standby
	// channels, the rendezvous point not at all (it bills the splice to
	// the client's circuit).
	Pay(path []*descriptor.Relay) (client.PayConfig, error)
}

// Stocker is a StandbyPayer that tells which relays it has a channel
// ready for (pay.Standby is one).
type Stocker interface {
	Stocked(r *descriptor.Relay) bool
}

// forRendezvous is the network a service builds a rendezvous circuit on:
// paid by Standby if there is one, after naming the guards and vanguards
// to it (the set may have changed since the last circuit), through a
// guard and a vanguard with a standby channel ready where some have one
// (Stocker): a hop without one waits, on its free allowance, for the next
// refill, which may come after the relay's grace for an unpaid circuit.
func (n Config) forRendezvous() Config {
	if n.Standby == nil {
		return n
	}
	n.stock()
	n.Pay, n.lastUnpaid = n.Standby.Pay, true
	if s, ok := n.Standby.(Stocker); ok {
		n.prefer = s.Stocked
	}
	return n
}

// stock names the guards and vanguards to Standby.
func (n *Config) stock() {
	if n.Standby == nil {
		return
	}
	guards, vanguards := n.guards.snapshot()
	if n.Entry != nil {
		guards = n.Entry.Guards()
	}
	ids := map[peer.ID]bool{}
	for _, id := range append(guards, vanguards...) {
		ids[id] = true
	}
	var relays []*descriptor.Relay
	for _, r := range n.Directory.Relays() {
		if ids[r.PeerID] {
			relays = append(relays, r)
		}
	}
	n.Standby.Stock(relays)
}
