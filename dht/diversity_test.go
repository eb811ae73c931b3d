package dht

import (
	"crypto/rand"
	"fmt"
	"net"
	"testing"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p-kbucket/peerdiversity"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	ma "github.com/multiformats/go-multiaddr"
)

func group(ip string, cpl int) peerdiversity.PeerGroupInfo {
	return peerdiversity.PeerGroupInfo{Cpl: cpl, IPGroupKey: peerdiversity.IPGroupKey(net.ParseIP(ip))}
}

// Peers of one /16 are capped per bucket and per table; other networks and
// loopback are not affected.
func TestIPGroupLimiter(t *testing.T) {
	l := newIPGroupLimiter(nil, 2, 3, 0)
	add := func(g peerdiversity.PeerGroupInfo) bool {
		if !l.Allow(g) {
			return false
		}
		l.Increment(g)
		return true
	}
	if !add(group("198.51.7.1", 5)) || !add(group("198.51.200.9", 5)) {
		t.Fatal("first two peers of a /16 in a bucket refused")
	}
	if add(group("198.51.3.3", 5)) {
		t.Fatal("third peer of a /16 in one bucket allowed")
	}
	if !add(group("198.51.3.3", 6)) {
		t.Fatal("peer of the /16 in another bucket refused")
	}
	if add(group("198.51.4.4", 7)) {
		t.Fatal("fourth peer of a /16 in the table allowed")
	}
	if !add(group("203.0.113.5", 5)) {
		t.Fatal("peer of another network refused")
	}
	for i := range 50 {
		if !add(group("127.0.0.1", i%3)) {
			t.Fatal("loopback peer refused")
		}
	}
	l.Decrement(group("198.51.7.1", 5))
	if !add(group("198.51.9.9", 5)) {
		t.Fatal("a freed place was not reused")
	}
}

// A burst of fresh Sybil peers, each from a network of its own so that
// the IP-group limits do not stop them, does not push established peers
// out of a full bucket: not after kad-dht has frozen its table (peers
// irreplaceable), and not in the window after a (re)bootstrap in which
// kad-dht adds peers as replaceable. A place frees only when a peer is
// removed (it stopped answering), and a newcomer then takes it.
func TestFullBucketKeepsEstablishedPeers(t *testing.T) {
	const k = 4
	for _, replaceable := range []bool{false, true} {
		local := randomPeer(t)
		addrs := map[peer.ID][]ma.Multiaddr{}
		l := newIPGroupLimiter(nil, DefaultMaxPerBucket, DefaultMaxPerTable, k)
		l.addrs = func(p peer.ID) []ma.Multiaddr { return addrs[p] }
		rt := newTestTable(t, local, k, l)
		ip := 0
		peerIn := func(cpl int) peer.ID {
			p := peerWithCpl(t, local, cpl)
			ip++
			addrs[p] = []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/%d.%d.0.1/udp/4001/quic-v1", 11+ip/250, ip%250))}
			return p
		}
		var honest []peer.ID
		for range k {
			p := peerIn(0)
			if ok, err := rt.TryAddPeer(p, true, replaceable); !ok || err != nil {
				t.Fatalf("honest peer not added: %v", err)
			}
			honest = append(honest, p)
		}
		for range 200 {
			p := peerIn(0)
			if ok, _ := rt.TryAddPeer(p, true, replaceable); ok {
				t.Fatalf("replaceable=%v: Sybil peer admitted to a full bucket", replaceable)
			}
		}
		for _, p := range honest {
			if rt.Find(p) == "" {
				t.Fatalf("replaceable=%v: established peer displaced", replaceable)
			}
		}
		if ok, err := rt.TryAddPeer(peerIn(3), true, replaceable); !ok || err != nil {
			t.Fatalf("peer of a bucket with room refused: %v", err)
		}
		rt.RemovePeer(honest[0])
		if ok, err := rt.TryAddPeer(peerIn(0), true, replaceable); !ok || err != nil {
			t.Fatalf("newcomer refused a freed place: %v", err)
		}
	}
}

// Without the filter, kbucket lets the same burst replace peers added in
// kad-dht's bootstrap window: the case the filter closes.
func TestFullBucketWithoutFilterDisplaced(t *testing.T) {
	const k = 4
	local := randomPeer(t)
	rt := newTestTable(t, local, k, nil)
	var honest []peer.ID
	for range k {
		p := peerWithCpl(t, local, 0)
		rt.TryAddPeer(p, true, true)
		honest = append(honest, p)
	}
	for range 20 {
		rt.TryAddPeer(peerWithCpl(t, local, 0), true, true)
	}
	for _, p := range honest {
		if rt.Find(p) != "" {
			t.Fatal("an established peer survived; kbucket no longer replaces replaceable peers")
		}
	}
}

func newTestTable(t *testing.T, local peer.ID, k int, l *ipGroupLimiter) *kb.RoutingTable {
	t.Helper()
	self := kb.ConvertPeerID(local)
	var df *peerdiversity.Filter
	if l != nil {
		var err error
		df, err = peerdiversity.NewFilter(l, "test", func(p peer.ID) int {
			return kb.CommonPrefixLen(self, kb.ConvertPeerID(p))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := kb.NewRoutingTable(k, self, time.Minute, ps, time.Hour, df)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(); ps.Close() })
	return rt
}

func randomPeer(t testing.TB) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// peerWithCpl returns a fresh peer ID sharing exactly cpl leading bits
// with local in the Kademlia key space.
func peerWithCpl(t *testing.T, local peer.ID, cpl int) peer.ID {
	t.Helper()
	for {
		p := randomPeer(t)
		if kb.CommonPrefixLen(kb.ConvertPeerID(local), kb.ConvertPeerID(p)) == cpl {
			return p
		}
	}
}
