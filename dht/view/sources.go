package view

import (
	"math/rand/v2"
	"net/netip"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/descriptor"
)

// netGroup is the network an address is in for the rule that a client's
// sources be in different networks: the IPv4 /16 or the IPv6 /32 of its
// first IP address, or "" if it has none.
func netGroup(addrs []ma.Multiaddr) netip.Prefix {
	for _, a := range addrs {
		for _, c := range a {
			var ip netip.Addr
			var ok bool
			switch c.Code() {
			case ma.P_IP4, ma.P_IP6:
				ip, ok = netip.AddrFromSlice(c.RawValue())
			}
			if !ok {
				continue
			}
			ip = ip.Unmap()
			bits := 16
			if ip.Is6() {
				bits = 32
			}
			p, _ := ip.Prefix(bits)
			return p
		}
	}
	return netip.Prefix{}
}

// pickSources chooses up to n candidates at random, no two in one network
// unless sameNet allows it, and none without an address. Loopback
// addresses are exempt, as in the DHT's routing table: peers on loopback
// are on this machine (a local test network), not an outside attacker's.
// The first keep candidates are taken first, in order; the rest are
// shuffled.
func pickSources(cands []peer.AddrInfo, n int, self peer.ID, sameNet bool, keep int) []peer.AddrInfo {
	cands = append([]peer.AddrInfo(nil), cands...)
	rest := cands[keep:]
	rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	seen := map[peer.ID]bool{self: true}
	nets := map[netip.Prefix]bool{}
	var out []peer.AddrInfo
	for _, c := range cands {
		if len(out) == n {
			break
		}
		g := netGroup(c.Addrs)
		if seen[c.ID] || !g.IsValid() || (!sameNet && !g.Addr().IsLoopback() && nets[g]) {
			continue
		}
		seen[c.ID], nets[g] = true, true
		out = append(out, c)
	}
	return out
}

// AddrInfo is where a descriptor says its relay listens.
func AddrInfo(r *descriptor.Relay) peer.AddrInfo {
	ai := peer.AddrInfo{ID: r.PeerID}
	for _, b := range r.Addrs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai
}

// Held are where the relays of ids that store holds listen, in the order
// of ids; the others are left out.
func Held(store Store, ids []peer.ID) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, id := range ids {
		if r, ok := store.Get(id); ok {
			out = append(out, AddrInfo(r))
		}
	}
	return out
}

// Candidates are the relays a view may be taken from: the given peers
// (e.g. bootstrap peers) and every relay of the descriptors.
func Candidates(boot []peer.AddrInfo, relays []*descriptor.Relay) []peer.AddrInfo {
	out := append([]peer.AddrInfo(nil), boot...)
	for _, r := range relays {
		out = append(out, AddrInfo(r))
	}
	return out
}
