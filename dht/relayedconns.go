package dht

import (
	"errors"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	xrate "github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// libp2p's resource manager limits new connections per IP address (a
// burst of 16, then one per 5 s) and connections open at once per IP
// address (8), taking the address from the head of the connection's
// remote multiaddr. A relayed connection's multiaddr starts with its
// rendezvous's address, so every previous hop that reaches a relay behind
// a cone NAT through one rendezvous would count as that rendezvous: after
// 16 of them the relay would refuse the rest, and any one peer could spend
// the budget of all others. A host that takes relayed connections
// therefore keeps the per-IP limits for direct connections only and gives
// relayed ones limits of their own (specs/02-dht.md §Reachability):
//
//   - per rendezvous, RelayedConnBurst at once, then RelayedConnRate a
//     second;
//   - per source, at the rendezvous, which sees the source's address
//     (rendezvousACL);
//   - the rendezvous's own, at most 8 relayed connections at once to one
//     reserved relay, each short and small (rendezvousLimit).
//
// The direct connection a hole punch then opens is a direct connection
// like any other, limited at the previous hop's own address.
const (
	RelayedConnRate  = 1  // new relayed connections a second, per rendezvous
	RelayedConnBurst = 32 // new relayed connections at once, per rendezvous
)

// maxRelayedLimiters bounds the table of per-rendezvous limiters.
const maxRelayedLimiters = 1024

// errRelayedRateLimited is the refusal of a relayed connection beyond
// its rendezvous's rate.
var errRelayedRateLimited = errors.New("dht: relayed connection rate limit exceeded for this rendezvous")

// errRateLimited is the refusal of a direct connection beyond its IP
// address's rate.
var errRateLimited = errors.New("dht: connection rate limit exceeded for this IP address")

// newConnRateLimiter is libp2p's default limiter of new connections per
// IP address (resource manager, conn_rate_limiter.go): 16 at once then
// 0.2 a second per IPv4 address and IPv6 /56, 80 then 0.5 a second per
// IPv6 /48, none on loopback.
func newConnRateLimiter() *xrate.Limiter {
	perIP := xrate.Limit{RPS: 0.2, Burst: 16}
	return &xrate.Limiter{
		NetworkPrefixLimits: []xrate.PrefixLimit{
			{Prefix: netip.MustParsePrefix("127.0.0.0/8")},
			{Prefix: netip.MustParsePrefix("::1/128")},
		},
		SubnetRateLimiter: xrate.SubnetLimiter{
			IPv4SubnetLimits: []xrate.SubnetLimit{{PrefixLength: 32, Limit: perIP}},
			IPv6SubnetLimits: []xrate.SubnetLimit{
				{PrefixLength: 56, Limit: perIP},
				{PrefixLength: 48, Limit: xrate.Limit{RPS: 0.5, Burst: 80}},
			},
			GracePeriod: time.Minute,
		},
	}
}

// relayedConnLimits wraps a resource manager built without its own rate
// limiter (rcmgr.WithConnRateLimiters(&xrate.Limiter{})): it limits
// direct connections per IP address as libp2p does, and relayed ones per
// rendezvous, handing the latter to the resource manager without the
// rendezvous's address so that its per-IP count of open connections
// leaves them out too.
type relayedConnLimits struct {
	network.ResourceManager
	direct  *xrate.Limiter
	relayed peerLimits
}

func newRelayedConnLimits(rm network.ResourceManager) *relayedConnLimits {
	return &relayedConnLimits{ResourceManager: rm, direct: newConnRateLimiter(), relayed: newPeerLimits(maxRelayedLimiters)}
}

// OpenConnection admits a new connection, inbound or outbound, at
// endpoint, its remote multiaddr.
func (l *relayedConnLimits) OpenConnection(dir network.Direction, usefd bool, endpoint ma.Multiaddr) (network.ConnManagementScope, error) {
	if rdv, rest, ok := splitRelayed(endpoint); ok {
		if !l.allowRelayed(rdv, time.Now()) {
			return nil, errRelayedRateLimited
		}
		return l.ResourceManager.OpenConnection(dir, usefd, rest)
	}
	if ip, err := manet.ToIP(endpoint); err == nil {
		if a, ok := netip.AddrFromSlice(ip); ok && !l.direct.Allow(a.Unmap()) {
			return nil, errRateLimited
		}
	}
	return l.ResourceManager.OpenConnection(dir, usefd, endpoint)
}

// allowRelayed takes a token from rdv's bucket.
func (l *relayedConnLimits) allowRelayed(rdv peer.ID, now time.Time) bool {
	return l.relayed.allow(rdv, now, RelayedConnRate, RelayedConnBurst)
}

// splitRelayed splits a relayed connection's multiaddr
// (<rendezvous address>/p2p/<rendezvous>/p2p-circuit[/p2p/<peer>]) into
// the rendezvous and the part from its /p2p on, which names no IP
// address. ok is false for any other multiaddr.
func splitRelayed(a ma.Multiaddr) (rdv peer.ID, rest ma.Multiaddr, ok bool) {
	for i, c := range a {
		if c.Code() != ma.P_CIRCUIT {
			continue
		}
		if i == 0 || a[i-1].Code() != ma.P_P2P {
			return "", nil, false
		}
		id, err := peer.Decode(a[i-1].Value())
		if err != nil {
			return "", nil, false
		}
		return id, a[i-1:], true
	}
	return "", nil, false
}
