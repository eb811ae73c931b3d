package router

import (
	"net"
	"net/netip"

	"github.com/libp2p/go-libp2p/core/peerstore"
	manet "github.com/multiformats/go-multiaddr/net"
)

// peerstoreRelayAddrs reports whether a TCP destination is the listening
// address of a peer in ps: the relays this node has learned of (from the
// DHT, its channels and identify). An exit stream to such an address
// would let a client reach a relay's link port as if from the exit.
func peerstoreRelayAddrs(ps peerstore.Peerstore) func(netip.AddrPort) bool {
	return func(dst netip.AddrPort) bool {
		for _, p := range ps.PeersWithAddrs() {
			for _, a := range ps.Addrs(p) {
				na, err := manet.ToNetAddr(a)
				if err != nil {
					continue
				}
				if t, ok := na.(*net.TCPAddr); ok && t.AddrPort().Port() == dst.Port() && t.AddrPort().Addr().Unmap() == dst.Addr() {
					return true
				}
			}
		}
		return false
	}
}

// withRelayAddrs returns a copy of p that also refuses isRelay's addresses,
// unless p already has such a check.
func (p *ExitPolicy) withRelayAddrs(isRelay func(netip.AddrPort) bool) *ExitPolicy {
	if p == nil || p.relay != nil {
		return p
	}
	q := *p
	q.relay = isRelay
	return &q
}
