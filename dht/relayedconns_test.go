package dht

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func relayedAddr(ip string, rdv peer.ID) ma.Multiaddr {
	return ma.StringCast(fmt.Sprintf("/ip4/%s/udp/4001/quic-v1/p2p/%s/p2p-circuit", ip, rdv))
}

func TestSplitRelayed(t *testing.T) {
	rdv, src := randomPeer(t), randomPeer(t)
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{fmt.Sprintf("/ip4/11.0.0.1/udp/4001/quic-v1/p2p/%s/p2p-circuit", rdv), true},
		{fmt.Sprintf("/ip4/11.0.0.1/tcp/4001/p2p/%s/p2p-circuit/p2p/%s", rdv, src), true},
		{"/ip4/11.0.0.1/udp/4001/quic-v1", false},
		{"/ip4/11.0.0.1/udp/4001/quic-v1/p2p-circuit", false},
		{fmt.Sprintf("/ip4/11.0.0.1/udp/4001/quic-v1/p2p/%s", rdv), false},
	} {
		got, rest, ok := splitRelayed(ma.StringCast(c.addr))
		if ok != c.ok {
			t.Errorf("%s: relayed %v, want %v", c.addr, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if got != rdv {
			t.Errorf("%s: rendezvous %s, want %s", c.addr, got, rdv)
		}
		if _, err := rest.ValueForProtocol(ma.P_IP4); err == nil {
			t.Errorf("%s: %v still names an IP address", c.addr, rest)
		}
	}
}

// FuzzSplitRelayed reads arbitrary multiaddrs: no panic, and a relayed
// one yields its rendezvous and a rest that starts at the rendezvous's
// /p2p/…/p2p-circuit, leaving out the address before it.
func FuzzSplitRelayed(f *testing.F) {
	rdv, src := randomPeer(f), randomPeer(f)
	f.Add(relayedAddr("11.0.0.1", rdv).Bytes())
	f.Add(ma.StringCast(fmt.Sprintf("/ip4/11.0.0.1/tcp/4001/p2p/%s/p2p-circuit/p2p/%s", rdv, src)).Bytes())
	f.Add(ma.StringCast("/ip4/11.0.0.1/udp/4001/quic-v1/p2p-circuit").Bytes())
	f.Add(ma.StringCast("/ip6/::1/tcp/1").Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return
		}
		id, rest, ok := splitRelayed(a)
		if !ok {
			return
		}
		if id == "" || len(rest) < 2 || rest[0].Code() != ma.P_P2P || rest[1].Code() != ma.P_CIRCUIT {
			t.Fatalf("%v: rendezvous %q, rest %v", a, id, rest)
		}
		if p, err := peer.Decode(rest[0].Value()); err != nil || p != id {
			t.Fatalf("%v: rendezvous %s, rest %v", a, id, rest)
		}
	})
}

// A host that takes relayed connections takes more of them through one
// rendezvous than libp2p admits from one IP address, at once and in a
// row, and they leave the rendezvous's address its own budget; direct
// connections from one address are limited as before.
func TestRelayedConnsSpareTheRendezvousAddress(t *testing.T) {
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := NewHost(HostConfig{Identity: k, Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, HolePunch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rm := h.Network().ResourceManager()
	rdv := randomPeer(t)

	var open []network.ConnManagementScope
	defer func() {
		for _, s := range open {
			s.Done()
		}
	}()
	const relayed = 24 // above libp2p's 8 at once and 16 in a row per IP
	for i := range relayed {
		s, err := rm.OpenConnection(network.DirInbound, false, relayedAddr("11.0.0.1", rdv))
		if err != nil {
			t.Fatalf("relayed connection %d refused: %v", i, err)
		}
		open = append(open, s)
	}
	// The rendezvous's own address still has its whole budget: 16 new
	// connections, and then refusals.
	direct := ma.StringCast("/ip4/11.0.0.1/udp/4001/quic-v1")
	n := 0
	for ; n < 40; n++ {
		s, err := rm.OpenConnection(network.DirInbound, false, direct)
		if err != nil {
			break
		}
		s.Done()
	}
	if n < 16 || n == 40 {
		t.Fatalf("%d direct connections from one address admitted, want 16 (and then refusals)", n)
	}
}

func TestRelayedConnRatePerRendezvous(t *testing.T) {
	l := newRelayedConnLimits(&network.NullResourceManager{})
	a, b := randomPeer(t), randomPeer(t)
	now := time.Unix(1e9, 0)
	for i := range RelayedConnBurst {
		if !l.allowRelayed(a, now) {
			t.Fatalf("relayed connection %d of the burst refused", i)
		}
	}
	if l.allowRelayed(a, now) {
		t.Fatal("relayed connection beyond the burst admitted")
	}
	if !l.allowRelayed(b, now) {
		t.Fatal("another rendezvous's first relayed connection refused")
	}
	if !l.allowRelayed(a, now.Add(time.Second/RelayedConnRate)) {
		t.Fatal("relayed connection refused after the bucket refilled")
	}
}

// A rendezvous limits relayed connections per source address, not per
// relay it forwards to, and never on loopback.
func TestRendezvousLimitsEachSource(t *testing.T) {
	acl := newRendezvousACL()
	src, dst := randomPeer(t), randomPeer(t)
	from := func(ip string) ma.Multiaddr { return ma.StringCast("/ip4/" + ip + "/udp/4001/quic-v1") }
	n := 0
	for ; n < 40 && acl.AllowConnect(src, from("11.0.0.1"), dst); n++ {
	}
	if n < rendezvousSourceBurst || n == 40 {
		t.Fatalf("%d relayed connections from one source admitted, want %d (and then refusals)", n, rendezvousSourceBurst)
	}
	if !acl.AllowConnect(src, from("11.0.0.2"), dst) {
		t.Fatal("another source refused")
	}
	for i := range 40 {
		if !acl.AllowConnect(src, from("127.0.0.1"), dst) {
			t.Fatalf("loopback source refused at %d", i)
		}
	}
	if acl.AllowConnect(src, ma.StringCast("/p2p-circuit"), dst) {
		t.Fatal("a source with no IP address admitted")
	}
}

// The table of per-peer buckets stays bounded: when it is full, peers idle
// for a minute are forgotten and busy ones keep their spent buckets.
func TestPeerLimitsEvictIdle(t *testing.T) {
	tbl := newPeerLimits(4)
	now := time.Now()
	idle, busy := randomPeer(t), randomPeer(t)
	tbl.allow(idle, now, 1, 1)
	later := now.Add(2 * time.Minute)
	if !tbl.allow(busy, later, 1, 1) || tbl.allow(busy, later, 1, 1) {
		t.Fatal("busy peer's bucket does not hold one token")
	}
	for range 2 {
		tbl.allow(randomPeer(t), later, 1, 1)
	}
	// The table is full (idle, busy and two fresh peers); one more peer
	// evicts the idle one only.
	tbl.allow(randomPeer(t), later, 1, 1)
	if _, ok := tbl.peers[idle]; ok {
		t.Fatal("idle peer kept in a full table")
	}
	if tbl.allow(busy, later, 1, 1) {
		t.Fatal("busy peer's spent bucket was forgotten")
	}
	if len(tbl.peers) > tbl.max {
		t.Fatalf("table holds %d peers, max %d", len(tbl.peers), tbl.max)
	}
}
