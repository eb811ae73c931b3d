package dht

import (
	"net"
	"testing"

	"github.com/libp2p/go-libp2p-kbucket/peerdiversity"
)

func group(ip string, cpl int) peerdiversity.PeerGroupInfo {
	return peerdiversity.PeerGroupInfo{Cpl: cpl, IPGroupKey: peerdiversity.IPGroupKey(net.ParseIP(ip))}
}

// Peers of one /16 are capped per bucket and per table; other networks and
// loopback are not affected.
func TestIPGroupLimiter(t *testing.T) {
	l := newIPGroupLimiter(nil, 2, 3)
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
