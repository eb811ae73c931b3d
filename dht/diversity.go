package dht

import (
	"net"
	"sync"

	"github.com/libp2p/go-libp2p-kbucket/peerdiversity"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Routing-table diversity limits: how many peers of one IP group (an IPv4
// /16, or an IPv6 network's ASN, as go-libp2p-kbucket groups them) a
// node keeps in one bucket and in its whole table. An attacker with many
// addresses in one network cannot fill a node's table, so lookups keep
// reaching peers it does not control (specs/02-dht.md).
const (
	DefaultMaxPerBucket = 3
	DefaultMaxPerTable  = 10
)

// loopbackGroups are exempt: peers on loopback are on this machine (a
// local test network) and cannot be an outside attacker's.
var loopbackGroups = map[peerdiversity.PeerIPGroupKey]bool{
	peerdiversity.IPGroupKey(net.ParseIP("127.0.0.1")): true,
	peerdiversity.IPGroupKey(net.ParseIP("::1")):       true,
}

// ipGroupLimiter is the peerdiversity.PeerIPGroupFilter of the routing
// table. Peers are grouped by the address of the connection we have to
// them, not by addresses they claim.
type ipGroupLimiter struct {
	h         host.Host
	perBucket int
	perTable  int

	mu     sync.Mutex // guards the counts
	bucket map[int]map[peerdiversity.PeerIPGroupKey]int
	table  map[peerdiversity.PeerIPGroupKey]int
}

var _ peerdiversity.PeerIPGroupFilter = (*ipGroupLimiter)(nil)

func newIPGroupLimiter(h host.Host, perBucket, perTable int) *ipGroupLimiter {
	return &ipGroupLimiter{h: h, perBucket: perBucket, perTable: perTable,
		bucket: map[int]map[peerdiversity.PeerIPGroupKey]int{},
		table:  map[peerdiversity.PeerIPGroupKey]int{}}
}

func (l *ipGroupLimiter) Allow(g peerdiversity.PeerGroupInfo) bool {
	if loopbackGroups[g.IPGroupKey] {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.table[g.IPGroupKey] < l.perTable && l.bucket[g.Cpl][g.IPGroupKey] < l.perBucket
}

func (l *ipGroupLimiter) Increment(g peerdiversity.PeerGroupInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.table[g.IPGroupKey]++
	if l.bucket[g.Cpl] == nil {
		l.bucket[g.Cpl] = map[peerdiversity.PeerIPGroupKey]int{}
	}
	l.bucket[g.Cpl][g.IPGroupKey]++
}

func (l *ipGroupLimiter) Decrement(g peerdiversity.PeerGroupInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.table[g.IPGroupKey]--; l.table[g.IPGroupKey] <= 0 {
		delete(l.table, g.IPGroupKey)
	}
	b := l.bucket[g.Cpl]
	if b[g.IPGroupKey]--; b[g.IPGroupKey] <= 0 {
		delete(b, g.IPGroupKey)
	}
	if len(b) == 0 {
		delete(l.bucket, g.Cpl)
	}
}

func (l *ipGroupLimiter) PeerAddresses(p peer.ID) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, c := range l.h.Network().ConnsToPeer(p) {
		out = append(out, c.RemoteMultiaddr())
	}
	return out
}
