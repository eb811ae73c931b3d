package dht

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func newRendezvousHost(t *testing.T, serve bool) host.Host {
	t.Helper()
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := NewHost(HostConfig{Identity: k, Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, HolePunch: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if serve {
		svc, err := StartRendezvous(h, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
	}
	return h
}

func infoOf(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// rendezvousOf are the rendezvous IDs that addrs go through.
func rendezvousOf(t *testing.T, addrs []ma.Multiaddr) []peer.ID {
	t.Helper()
	var out []peer.ID
	for _, a := range addrs {
		s, err := a.ValueForProtocol(ma.P_P2P)
		if err != nil {
			t.Fatalf("%v names no rendezvous", a)
		}
		id, err := peer.Decode(s)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// A relay behind a cone NAT reserves at relays drawn from its view before
// its bootstrap relays, skipping itself and relays that refuse, and falls
// back to the bootstrap relays when the view gives too few.
func TestReservationsPreferTheView(t *testing.T) {
	self := newRendezvousHost(t, false)
	fromView := []host.Host{newRendezvousHost(t, true), newRendezvousHost(t, true)}
	refuses := newRendezvousHost(t, false) // in the view, serves no rendezvous
	bootstrap := newRendezvousHost(t, true)
	view := []peer.AddrInfo{infoOf(self), infoOf(refuses), infoOf(fromView[0]), infoOf(fromView[1])}

	r, err := NewReservations(self, ReservationsConfig{Want: 2,
		Candidates: func() []peer.AddrInfo { return slices.Clone(view) },
		Rendezvous: []peer.AddrInfo{infoOf(bootstrap)}})
	if err != nil {
		t.Fatal(err)
	}
	r.renew(context.Background())
	want := []peer.ID{fromView[0].ID(), fromView[1].ID()}
	slices.Sort(want)
	if got := rendezvousOf(t, r.Addrs()); !slices.Equal(got, want) {
		t.Fatalf("reserved at %v, want the two relays of the view that serve %v", got, want)
	}

	// The view shrinks to one that serves: the bootstrap relay fills in.
	view = view[:3]
	r2, err := NewReservations(self, ReservationsConfig{Want: 2,
		Candidates: func() []peer.AddrInfo { return slices.Clone(view) },
		Rendezvous: []peer.AddrInfo{infoOf(bootstrap)}})
	if err != nil {
		t.Fatal(err)
	}
	r2.renew(context.Background())
	want = []peer.ID{fromView[0].ID(), bootstrap.ID()}
	slices.Sort(want)
	if got := rendezvousOf(t, r2.Addrs()); !slices.Equal(got, want) {
		t.Fatalf("reserved at %v, want the view's one and the bootstrap relay %v", got, want)
	}
}
