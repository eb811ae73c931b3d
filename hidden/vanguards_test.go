package hidden_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/relaynet"
)

// clientView is a client's directory: the network without some relays,
// with one relay alone offering rendezvous.
type clientView struct {
	base       *relaynet.Directory
	hide       map[peer.ID]bool
	rendezvous peer.ID
}

func (v clientView) Relays() []*descriptor.Relay {
	var out []*descriptor.Relay
	for _, r := range v.base.Relays() {
		if v.hide[r.PeerID] {
			continue
		}
		c := *r
		if c.PeerID != v.rendezvous {
			c.Roles &^= descriptor.RoleRendezvous
		}
		out = append(out, &c)
	}
	return out
}

// An attacker's client introduces itself to a service again and again,
// always naming the attacker's relay as its rendezvous point, and that
// relay notes the previous hop of every circuit it carries. Besides the
// client's own relays it sees the service's vanguards and never the
// service's guard nor any other relay (a random middle, as without
// vanguards, would show up), and no more relays of the service than it
// has vanguards. The client's view lacks the service's guards and
// vanguards, so that the two sides' relays are told apart.
func TestAttackerRendezvousPointSeesOnlyVanguards(t *testing.T) {
	tn := newTestNet(t, 12)
	l, _ := tn.listen(newKey(t))
	body := []byte("vanguards")
	serveHTTP(t, l, body)
	guards, vanguards := l.GuardLayers()
	if len(guards) == 0 || len(vanguards) == 0 {
		t.Fatalf("service guards %v, vanguards %v", guards, vanguards)
	}
	hide := map[peer.ID]bool{}
	for _, id := range append(slices.Clone(guards), vanguards...) {
		hide[id] = true
	}
	var attacker *relay
	for _, r := range tn.relays {
		if !hide[r.id()] {
			attacker = r
			break
		}
	}
	n, ch := tn.endpoint()
	n.Directory = clientView{base: tn.dir, hide: hide, rendezvous: attacker.id()}
	c, err := hidden.NewConnector(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	seen := map[peer.ID]bool{} // previous hops at the attacker's point on the service's side
	const rounds = 8
	for i := range rounds {
		if got, err := get(t, c, l.Address()); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("introduction %d: %q %v", i, got, err)
		}
		cg, cv := c.GuardLayers()
		clientSide := append(append([]peer.ID{ch.ID()}, cg...), cv...)
		fromService := 0
		for _, k := range attacker.Router.Circuits() {
			switch {
			case slices.Contains(guards, k.Prev):
				t.Fatalf("introduction %d: the service's guard %s is next to the attacker's rendezvous point", i, k.Prev)
			case slices.Contains(vanguards, k.Prev):
				seen[k.Prev] = true
				fromService++
			case !slices.Contains(clientSide, k.Prev):
				t.Fatalf("introduction %d: relay %s, neither the client's nor a vanguard of the service, is next to the point", i, k.Prev)
			}
		}
		if fromService == 0 {
			t.Fatalf("introduction %d: no circuit of the service at the rendezvous point", i)
		}
		c.DropSession(l.Address())
	}
	if len(seen) > 4 {
		t.Fatalf("%d relays of the service next to the rendezvous point", len(seen))
	}
	t.Logf("%d introductions: the rendezvous point saw %d of the service's %d vanguards, none of its %d guards",
		rounds, len(seen), len(vanguards), len(guards))
}
