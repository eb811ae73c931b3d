package dht

import (
	"context"
	"crypto/rand"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// reachNet is n hosts on loopback, all connected, each serving AutoNAT v2
// checks (private addresses allowed). The returned function starts a
// checked host: its Reach asks the others about the addresses addrs
// returns and reports each verdict on the channel.
func reachNet(t *testing.T, n int) func(addrs func(host.Host) []ma.Multiaddr) (*Reach, <-chan bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var servers []host.Host
	newHost := func() host.Host {
		k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		h, err := NewHost(HostConfig{Identity: k, Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	run := func(r *Reach) {
		errc := make(chan error, 1)
		go func() { errc <- r.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Error(err)
			}
		})
	}
	for range n {
		h := newHost()
		r, err := NewReach(h, ReachConfig{AllowPrivate: true, Interval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		run(r)
		servers = append(servers, h)
	}
	return func(addrs func(host.Host) []ma.Multiaddr) (*Reach, <-chan bool) {
		h := newHost()
		verdicts := make(chan bool, 16)
		var r *Reach
		var err error
		r, err = NewReach(h, ReachConfig{AllowPrivate: true, Interval: time.Hour,
			Addrs: func() []ma.Multiaddr { return addrs(h) },
			Changed: func() {
				_, ok := r.Checked()
				verdicts <- ok
			}})
		if err != nil {
			t.Fatal(err)
		}
		run(r)
		for _, s := range servers {
			if err := h.Connect(ctx, peer.AddrInfo{ID: s.ID(), Addrs: s.Addrs()}); err != nil {
				t.Fatal(err)
			}
		}
		return r, verdicts
	}
}

// A host that listens where it says is confirmed by three distinct peers
// and its address is published.
func TestReachConfirmsListeningAddress(t *testing.T) {
	start := reachNet(t, 3)
	r, verdicts := start(func(h host.Host) []ma.Multiaddr { return h.Addrs() })
	if !<-verdicts {
		t.Fatalf("reachable host classified unreachable")
	}
	if got := r.Confirmed(); len(got) != 1 {
		t.Fatalf("confirmed %v, want the one listen address", got)
	}
}

// A host that claims an address nothing answers at — as a relay behind a
// NAT announcing the NAT's address would — is not confirmed: the peers'
// dial-backs fail, and a success cannot be forged without the nonce.
func TestReachRefusesClaimedAddress(t *testing.T) {
	claimed := unanswered(t)
	start := reachNet(t, 3)
	r, verdicts := start(func(host.Host) []ma.Multiaddr { return []ma.Multiaddr{claimed} })
	if <-verdicts || len(r.Confirmed()) != 0 {
		t.Fatalf("claimed address confirmed: %v", r.Confirmed())
	}
}

// unanswered is a QUIC address on loopback nobody answers at.
func unanswered(t *testing.T) ma.Multiaddr {
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	return ma.StringCast("/ip4/127.0.0.1/udp/" + strconv.Itoa(port) + "/quic-v1")
}

// Tally: successes confirm an address, failures refute it, and an
// address is decided only after need answers of one kind.
func TestReachTally(t *testing.T) {
	a, b := ma.StringCast("/ip4/1.2.3.4/udp/1/quic-v1"), ma.StringCast("/ip4/1.2.3.4/tcp/1")
	tl := newReachTally([]ma.Multiaddr{a, b}, 2)
	if tl.done() || !tl.requests()[0].Addr.Equal(a) {
		t.Fatal("fresh tally decided or misordered")
	}
	tl.add(a, network.ReachabilityPublic)
	tl.add(a, network.ReachabilityPrivate)
	tl.add(a, network.ReachabilityPublic)
	if tl.done() || !tl.requests()[0].Addr.Equal(b) {
		t.Fatal("decided address not moved behind the open one")
	}
	tl.add(b, network.ReachabilityPrivate)
	tl.add(b, network.ReachabilityUnknown)
	tl.add(ma.StringCast("/ip4/5.6.7.8/tcp/1"), network.ReachabilityPublic) // not asked about
	if tl.done() {
		t.Fatal("one failure decided an address")
	}
	tl.add(b, network.ReachabilityPrivate)
	if !tl.done() {
		t.Fatal("tally not done")
	}
	if c := tl.confirmed(); len(c) != 1 || !c[0].Equal(a) {
		t.Fatalf("confirmed %v, want only %v", c, a)
	}
}

// A node in ModeAuto serves queries until its host is found unreachable,
// then stops: peers no longer take it into their routing tables, where it
// would be a peer nobody can dial.
func TestUnreachableNodeStopsServing(t *testing.T) {
	claimed := unanswered(t)
	start := reachNet(t, 3)
	r, verdicts := start(func(host.Host) []ma.Multiaddr { return []ma.Multiaddr{claimed} })
	n, err := Open(r.h, Config{Mode: ModeAuto})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if <-verdicts {
		t.Fatal("claimed address confirmed")
	}
	for i := 0; n.Serving(); i++ {
		if i == 3000 {
			t.Fatal("an unreachable node still serves DHT queries")
		}
		time.Sleep(10 * time.Millisecond) // kad-dht takes the verdict in a goroutine of its own
	}
}

// Before any verdict, and on a host that is not checked, a node in
// ModeAuto serves queries, as a relay must.
func TestModeAutoServesUntilVerdict(t *testing.T) {
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := NewHost(HostConfig{Identity: k, Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	n, err := Open(h, Config{Mode: ModeAuto})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if !n.Serving() {
		t.Fatal("a node in ModeAuto does not serve before any verdict")
	}
}
