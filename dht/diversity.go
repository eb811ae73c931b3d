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

// The same filter keeps established peers: a peer whose bucket is full is
// refused, so it can never take the place of one already there. kad-dht
// admits a newcomer to a full bucket only by evicting a "replaceable"
// peer, and the peers it adds while its table is (re)filling stay
// replaceable until a minute after its second refresh; in that window a
// burst of fresh Sybil peers could push out the peers a node started
// with. A place in a bucket opens only when kad-dht removes a peer that
// stopped answering (its liveness checks) or stopped speaking the DHT
// protocol. Kademlia's own rule: prefer peers that have stayed.
//
// The routing table holds its lock while it calls the filter, so the
// filter keeps its own count of the peers of each bucket. Buckets are by
// common prefix length (cpl) with this node; kbucket gives every cpl
// below its last bucket a bucket of its own and unfolds the last bucket
// before it would refuse a peer, so a newcomer has to replace someone
// exactly when k peers of its cpl are already in the table.

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
	addrs      func(peer.ID) []ma.Multiaddr // of our connections to a peer
	perBucket  int
	perTable   int
	bucketSize int // k; 0 admits peers to full buckets

	mu     sync.Mutex // guards the counts
	bucket map[int]map[peerdiversity.PeerIPGroupKey]int
	table  map[peerdiversity.PeerIPGroupKey]int
	cpl    map[int]map[peer.ID]int // peers of each cpl, and their groups
}

var _ peerdiversity.PeerIPGroupFilter = (*ipGroupLimiter)(nil)

func newIPGroupLimiter(h host.Host, perBucket, perTable, bucketSize int) *ipGroupLimiter {
	return &ipGroupLimiter{addrs: connAddrs(h), perBucket: perBucket, perTable: perTable, bucketSize: bucketSize,
		bucket: map[int]map[peerdiversity.PeerIPGroupKey]int{},
		table:  map[peerdiversity.PeerIPGroupKey]int{},
		cpl:    map[int]map[peer.ID]int{}}
}

func (l *ipGroupLimiter) Allow(g peerdiversity.PeerGroupInfo) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bucketSize > 0 && len(l.cpl[g.Cpl]) >= l.bucketSize {
		return false // the bucket is full: keep the peers it has
	}
	if loopbackGroups[g.IPGroupKey] {
		return true
	}
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
	if l.cpl[g.Cpl] == nil {
		l.cpl[g.Cpl] = map[peer.ID]int{}
	}
	l.cpl[g.Cpl][g.Id]++
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
	c := l.cpl[g.Cpl]
	if c[g.Id]--; c[g.Id] <= 0 {
		delete(c, g.Id)
	}
	if len(c) == 0 {
		delete(l.cpl, g.Cpl)
	}
}

func (l *ipGroupLimiter) PeerAddresses(p peer.ID) []ma.Multiaddr { return l.addrs(p) }

// connAddrs returns the remote addresses of h's connections to a peer.
func connAddrs(h host.Host) func(peer.ID) []ma.Multiaddr {
	return func(p peer.ID) []ma.Multiaddr {
		var out []ma.Multiaddr
		for _, c := range h.Network().ConnsToPeer(p) {
			out = append(out, c.RemoteMultiaddr())
		}
		return out
	}
}
