package node

import (
	"runtime/debug"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/router"
)

// ProtocolVersion is the one circuit protocol version relays announce.
const ProtocolVersion = circuit.ProtocolVersion

// describer signs the relay's descriptor from its configuration, its
// host's current addresses and its onion key.
type describer struct {
	key      crypto.PrivKey
	host     host.Host
	announce []ma.Multiaddr // replace the host's addresses when set
	reach    *dht.Reach     // nil: publish addresses unchecked
	nat      *natRole       // nil: no rendezvous addresses
	keys     *onionKeyring
	exit     *router.ExitPolicy // nil unless an exit
	// terms are the relay's price and payment terms, read at each
	// signing (a paid relay names its mint's keyset once it has it); nil
	// for a free relay.
	terms func() (descriptor.Price, descriptor.Payment)
	cfg   RelayConfig
}

// addrs are the addresses to publish: those other peers confirmed they
// can dial; else, behind a cone NAT, the /p2p-circuit addresses of the
// rendezvous the relay holds reservations at (rendezvous is then true);
// without a reachability check, the candidates.
func (d *describer) addrs() (addrs []ma.Multiaddr, rendezvous bool) {
	if d.reach == nil {
		return d.candidates(), false
	}
	if conf := d.reach.Confirmed(); len(conf) > 0 || d.nat == nil {
		return conf, false
	}
	c := d.nat.circuitAddrs()
	return c, len(c) > 0
}

// candidates are the announced addresses, or else the host's current
// listen addresses.
func (d *describer) candidates() []ma.Multiaddr {
	if len(d.announce) > 0 {
		return d.announce
	}
	return d.host.Addrs()
}

// sign is the relay's dht.SignFunc.
func (d *describer) sign(seq uint64, now time.Time) ([]byte, error) {
	r := d.describe(now)
	if len(r.Addrs) == 0 && d.reach != nil {
		return nil, dht.ErrUnreachable
	}
	r.Seq = seq
	rec, err := descriptor.Sign(d.key, r)
	if err == nil {
		d.cfg.Logger.Debug("signed descriptor", "seq", seq, "addrs", len(r.Addrs))
	}
	return rec, err
}

var _ dht.SignFunc = (*describer)(nil).sign

// describe builds the unsigned descriptor body at time now.
func (d *describer) describe(now time.Time) *descriptor.Relay {
	addrs, rendezvous := d.addrs()
	keys, covered := d.keys.Published(now)
	r := &descriptor.Relay{
		Version:   descriptor.Version,
		PeerID:    d.host.ID(),
		Published: now.Unix(),
		// Every moment of the descriptor's life has a key (see
		// onionKeyring); the configuration makes sure it is the lifetime.
		Expires:   min(now.Add(d.cfg.Lifetime).Unix(), covered.Unix()),
		Addrs:     advertised(addrs),
		OnionKeys: keys,
		Roles:     d.cfg.Roles,
		Bandwidth: d.cfg.Bandwidth,
		Software:  Software(),
		Protocols: []uint16{ProtocolVersion},
	}
	if d.terms != nil {
		r.Price, r.Payment = d.terms()
	}
	if d.exit != nil {
		for _, pr := range d.exit.Summary() {
			r.ExitPorts = append(r.ExitPorts, descriptor.PortRange{Lo: pr.Lo, Hi: pr.Hi})
		}
	}
	if len(r.ExitPorts) == 0 {
		r.Roles &^= descriptor.RoleExit // a policy that accepts nothing is no exit
	}
	if rendezvous {
		// Clients dial their guards; only a relay reaches one behind a
		// NAT, through its rendezvous.
		r.Roles &^= descriptor.RoleGuard
	}
	return r
}

// advertised orders addresses public first, then private, then loopback,
// and keeps as many as a descriptor may carry.
func advertised(addrs []ma.Multiaddr) [][]byte {
	rank := func(a ma.Multiaddr) int {
		switch {
		case manet.IsPublicAddr(a):
			return 0
		case manet.IsIPLoopback(a):
			return 2
		default:
			return 1
		}
	}
	sorted := append([]ma.Multiaddr(nil), addrs...)
	sort.SliceStable(sorted, func(i, j int) bool { return rank(sorted[i]) < rank(sorted[j]) })
	var out [][]byte
	for _, a := range sorted {
		if b := a.Bytes(); len(b) <= descriptor.MaxAddrLen && len(out) < descriptor.MaxAddrs {
			out = append(out, b)
		}
	}
	return out
}

// Software names this build, e.g. "obol/v0.1.0" or "obol/devel".
func Software() string {
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	s := "obol/" + v
	if len(s) > descriptor.MaxSoftwareLen {
		s = s[:descriptor.MaxSoftwareLen]
	}
	return s
}
