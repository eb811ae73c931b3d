package link

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newPunchHost(t)
	svc, err := dht.StartRendezvous(r, true)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()

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
	done := make(chan error, 1)
	go func() { done <- rsv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-reserved
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
	_, err = ma.Channel(dctx, peer.AddrInfo{ID: b.ID(), Addrs: addrs})
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
