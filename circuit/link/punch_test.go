package link

import (
	"context"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/dht"
)

func newPunchHost(t *testing.T) host.Host {
	t.Helper()
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: k, Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, HolePunch: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// A peer reached only through a rendezvous gets no channel until a
// direct connection is up: the dial goes through the rendezvous (a
// limited connection to the peer appears), and on loopback, where libp2p
// does not punch holes, it fails without ever opening the channel's
// stream on the relayed connection, which the rendezvous could read the
// cells' sizes and timing on.
func TestChannelNeverOnRelayedConnection(t *testing.T) {
	ctx := context.Background()
	r := newPunchHost(t)
	b, mb, rsv := reservedRelay(t, r)
	addrs := rsv.Addrs()
	if len(addrs) == 0 {
		t.Fatal("reservation held, but no /p2p-circuit address")
	}

	a := newPunchHost(t)
	ma := NewManager(a, Config{})
	ma.Start()
	t.Cleanup(func() { ma.Close() })
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	defer dcancel()
	_, err := ma.Channel(dctx, peer.AddrInfo{ID: b.ID(), Addrs: addrs})
	if err == nil || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a channel opened without a direct connection (err %v)", err)
	}
	limited := false
	for _, c := range a.Network().ConnsToPeer(b.ID()) {
		if !c.Stat().Limited {
			t.Fatalf("a direct connection to a peer behind a rendezvous on loopback: %v", c.RemoteMultiaddr())
		}
		limited = true
	}
	if !limited {
		t.Fatalf("the dial did not go through the rendezvous: %v", err)
	}
	if n := mb.Channels(); n != 0 {
		t.Fatalf("the peer behind the rendezvous holds %d channels", n)
	}
}

// With Config.Callback, a channel to a relay behind a rendezvous runs on
// a direct connection the relay dialed back at the rendezvous's word: no
// relayed connection, which on loopback could not be punched anyway.
func TestChannelOnCallback(t *testing.T) {
	ctx := context.Background()
	r := newPunchHost(t)
	defer dht.ServeCallbackRendezvous(r)()
	b, _, rsv := reservedRelay(t, r)
	defer dht.ServeCallbacks(b, dht.CallbackConfig{FromRendezvous: rsv.Holds, AllowPrivate: true})()

	a := newPunchHost(t)
	var calls atomic.Int32
	ma := NewManager(a, Config{Callback: func(ctx context.Context, rdv peer.AddrInfo, target peer.ID) error {
		calls.Add(1)
		return dht.RequestCallback(ctx, a, rdv, target)
	}})
	ma.Start()
	t.Cleanup(func() { ma.Close() })
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	ch, err := ma.Channel(dctx, peer.AddrInfo{ID: b.ID(), Addrs: rsv.Addrs()})
	if err != nil {
		t.Fatalf("no channel on a callback: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d callbacks asked", n)
	}
	for _, c := range a.Network().ConnsToPeer(b.ID()) {
		if c.Stat().Limited || c.Stat().Direction != network.DirInbound {
			t.Fatalf("a connection to the relay not dialed back by it: %v %v", c.Stat().Direction, c.RemoteMultiaddr())
		}
	}
	if _, err := ch.Open(newRecorder()); err != nil {
		t.Fatal(err)
	}
}

// A callback goes through a rendezvous the node is connected to, if one
// of the relay's is; else through the first it names.
func TestPickRendezvous(t *testing.T) {
	a, r1, r2 := newPunchHost(t), newPunchHost(t), newPunchHost(t)
	target := newPunchHost(t)
	circuit := func(r host.Host) ma.Multiaddr {
		return r.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit"))
	}
	addrs := []ma.Multiaddr{circuit(r1), circuit(r2)}
	if got, ok := pickRendezvous(addrs, a.Network()); !ok || got.ID != r1.ID() || len(got.Addrs) != 1 {
		t.Fatalf("with no connection: %v %v, want the first, %s", got, ok, r1.ID())
	}
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: r2.ID(), Addrs: r2.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if got, ok := pickRendezvous(addrs, a.Network()); !ok || got.ID != r2.ID() {
		t.Fatalf("connected to the second: %v %v", got, ok)
	}
	if _, ok := pickRendezvous(target.Addrs(), a.Network()); ok {
		t.Fatal("a rendezvous picked from direct addresses")
	}
}

// A callback goes through a rendezvous the node is connected to; else
// through a forwarder Config.Forwarders names; else through the first
// rendezvous.
func TestPickForwarder(t *testing.T) {
	a, r1, r2, x := newPunchHost(t), newPunchHost(t), newPunchHost(t), newPunchHost(t)
	target := newPunchHost(t)
	circuit := func(r host.Host) ma.Multiaddr {
		return r.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit"))
	}
	ai := peer.AddrInfo{ID: target.ID(), Addrs: []ma.Multiaddr{circuit(r1), circuit(r2)}}
	var fwd []peer.AddrInfo
	m := NewManager(a, Config{Forwarders: func(p peer.ID) []peer.AddrInfo {
		if p != target.ID() {
			t.Errorf("forwarders asked for %s", p)
		}
		return fwd
	}})
	if got, _ := m.pickForwarder(ai); got.ID != r1.ID() {
		t.Fatalf("no connection, no forwarder: %s, want the first rendezvous", got.ID)
	}
	fwd = []peer.AddrInfo{{ID: x.ID(), Addrs: x.Addrs()}}
	if got, _ := m.pickForwarder(ai); got.ID != x.ID() {
		t.Fatalf("a forwarder named: %s, want it", got.ID)
	}
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: r2.ID(), Addrs: r2.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.pickForwarder(ai); got.ID != r2.ID() {
		t.Fatalf("connected to a rendezvous: %s, want it", got.ID)
	}
}

// reservedRelay starts rendezvous service on r and a relay, with a link
// manager taking channels, that holds a reservation at r; everything
// stops when t ends.
func reservedRelay(t *testing.T, r host.Host) (host.Host, *Manager, *dht.Reservations) {
	t.Helper()
	svc, err := dht.StartRendezvous(r, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	b := newPunchHost(t)
	mb := NewManager(b, Config{OnCreate: func(*Channel, uint32) Handler { return newRecorder() }})
	mb.Start()
	t.Cleanup(func() { mb.Close() })
	reserved := make(chan struct{}, 1)
	rsv, err := dht.NewReservations(b, dht.ReservationsConfig{
		Rendezvous: []peer.AddrInfo{{ID: r.ID(), Addrs: r.Addrs()}}, Want: 1,
		Changed: func() {
			select {
			case reserved <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rsv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-reserved
	return b, mb, rsv
}
