package dht

import (
	"net/netip"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// NATType is what a relay learns about the NAT in front of it
// (specs/02-dht.md §Reachability).
type NATType int

const (
	// NATUnknown: too few peers have reported where they see the relay.
	NATUnknown NATType = iota
	// NATPublic: other peers dialed the relay back (AutoNAT v2).
	NATPublic
	// NATCone: not reachable, but every peer sees the relay's UDP socket
	// at one external ip:port (endpoint-independent mapping): a hole
	// punched towards a peer opens the mapping every peer saw.
	NATCone
	// NATSymmetric: peers see the one UDP socket at different external
	// ports (endpoint-dependent mapping): the port a hole punch would
	// open is not the one the other side was told.
	NATSymmetric
)

func (t NATType) String() string {
	switch t {
	case NATPublic:
		return "public"
	case NATCone:
		return "cone"
	case NATSymmetric:
		return "symmetric"
	default:
		return "unknown"
	}
}

// DefaultNATObservers is how many peers with distinct IP addresses must
// report where they see a relay before it classifies its NAT.
const DefaultNATObservers = 3

// natClassifier classifies a NAT's mapping from the addresses peers
// observe one UDP socket at (identify's observed address). It keeps the
// latest observation of each observer IP address: peers behind one
// address count once. It does no I/O.
type natClassifier struct {
	need int
	seen map[netip.Addr]netip.AddrPort // observer IP -> observed ip:port
}

func newNATClassifier(need int) *natClassifier {
	return &natClassifier{need: need, seen: map[netip.Addr]netip.AddrPort{}}
}

// add records that the peer at observer sees the relay's UDP socket at
// observed. It ignores anything that is not a UDP address on both sides,
// or is relayed.
func (c *natClassifier) add(observer, observed ma.Multiaddr) {
	from, ok1 := udpAddrPort(observer)
	at, ok2 := udpAddrPort(observed)
	if !ok1 || !ok2 {
		return
	}
	c.seen[from.Addr()] = at
}

// verdict is NATUnknown until need observers with distinct IPs have
// reported; then NATCone if all of them saw one ip:port, else
// NATSymmetric. A lying observer can only turn a cone into a symmetric
// verdict, which keeps the relay out: it cannot make the ports of a
// symmetric NAT agree.
func (c *natClassifier) verdict() NATType {
	if len(c.seen) < c.need {
		return NATUnknown
	}
	var first netip.AddrPort
	for _, at := range c.seen {
		if !first.IsValid() {
			first = at
		} else if at != first {
			return NATSymmetric
		}
	}
	return NATCone
}

// udpAddrPort is the IP and UDP port of a direct (not relayed) UDP
// address such as /ip4/…/udp/…/quic-v1.
func udpAddrPort(a ma.Multiaddr) (netip.AddrPort, bool) {
	if len(a) < 2 || a[1].Protocol().Code != ma.P_UDP {
		return netip.AddrPort{}, false
	}
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return netip.AddrPort{}, false
	}
	na, err := manet.ToNetAddr(a[:2])
	if err != nil {
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(na.String())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}
