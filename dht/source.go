package dht

import (
	"context"
	"net"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/libp2p/go-netroute"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	quicgo "github.com/quic-go/quic-go"
	"go.uber.org/fx"
)

// quicReuse is libp2p's default QUIC connection manager — inbound
// connections scoped by the resource manager, source addresses verified
// under load — whose dials to a loopback address leave from the host's
// loopback listen address (loopbackSource). libp2p's own choice, the
// route's source (127.0.0.1 on loopback), would give every node of a
// local network that listens on an address of its own (127.0.0.0/8) the
// same source on its QUIC links, where its TCP links (go-reuseport's
// dialer) already leave from the listen address.
func quicReuse(listen []string) libp2p.Option {
	loopback := loopbackIPs(listen)
	return libp2p.QUICReuse(func(key quicgo.StatelessResetKey, tok quicgo.TokenGeneratorKey, rm network.ResourceManager,
		lc fx.Lifecycle) (*quicreuse.ConnManager, error) {
		cm, err := quicreuse.NewConnManager(key, tok,
			quicreuse.ConnContext(func(ctx context.Context, ci *quicgo.ClientInfo) (context.Context, error) {
				addr, err := quicreuse.ToQuicMultiaddr(ci.RemoteAddr, quicgo.Version1)
				if err != nil {
					addr = nil // the resource manager decides
				}
				scope, err := rm.OpenConnection(network.DirInbound, false, addr)
				if err != nil {
					return ctx, err
				}
				ctx = network.WithConnManagementScope(ctx, scope)
				context.AfterFunc(ctx, scope.Done)
				return ctx, nil
			}),
			quicreuse.VerifySourceAddress(rm.VerifySourceAddress),
			quicreuse.OverrideSourceIPSelector(func() (quicreuse.SourceIPSelector, error) {
				r, err := netroute.New()
				return loopbackSource{routes: r, loopback: loopback}, err
			}),
		)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(cm.Close))
		return cm, nil
	})
}

// loopbackSource chooses the source address of a QUIC dial: for a
// loopback destination, the host's first loopback listen address of the
// destination's family; otherwise the route's source, as libp2p does.
type loopbackSource struct {
	routes interface {
		Route(net.IP) (*net.Interface, net.IP, net.IP, error)
	}
	loopback []net.IP
}

func (s loopbackSource) PreferredSourceIPForDestination(dst *net.UDPAddr) (net.IP, error) {
	if dst.IP.IsLoopback() {
		for _, ip := range s.loopback {
			if (ip.To4() == nil) == (dst.IP.To4() == nil) {
				return ip, nil
			}
		}
	}
	if s.routes == nil {
		return nil, net.UnknownNetworkError("no routes")
	}
	_, _, src, err := s.routes.Route(dst.IP)
	return src, err
}

// loopbackIPs are the loopback addresses among listen multiaddrs.
func loopbackIPs(listen []string) []net.IP {
	var out []net.IP
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		if ip, err := manet.ToIP(a); err == nil && ip.IsLoopback() {
			out = append(out, ip)
		}
	}
	return out
}
