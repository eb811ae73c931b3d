package sim

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/marcopolo/simnet"
	"github.com/quic-go/quic-go"
	"go.uber.org/fx"
)

// endpoint is one simulated node's attachment to the network: its
// address, its region and its UDP socket on simnet, whose counters are the
// bytes the node put on and took off the wire (QUIC headers included).
type endpoint struct {
	addr   *net.UDPAddr
	region int
	conn   atomic.Pointer[simnet.SimConn]
}

// Bytes is what the endpoint has sent and received so far.
func (e *endpoint) Bytes() (sent, rcvd int64) {
	c := e.conn.Load()
	if c == nil {
		return 0, 0
	}
	s := c.Stats()
	return int64(s.BytesSent), int64(s.BytesRcvd)
}

// sourceIP answers quic-go's question of which source address a packet
// leaves from: always the node's one simulated address.
type sourceIP struct{ ip net.IP }

func (s sourceIP) PreferredSourceIPForDestination(*net.UDPAddr) (net.IP, error) { return s.ip, nil }

// newHost builds a libp2p host that speaks QUIC over the endpoint's
// simnet link with the given bandwidth. It is a host as dht.NewHost
// builds one, with simnet in place of the kernel's UDP sockets: no TCP,
// no NAT port mapping, no relaying, and libp2p's null resource manager
// (the limits of a real relay are not what is measured here).
func newHost(nw *simnet.Simnet, ep *endpoint, key crypto.PrivKey, link simnet.NodeBiDiLinkSettings, connLow, connHigh int) (host.Host, error) {
	src := sourceIP{ip: ep.addr.IP}
	reuse := []quicreuse.Option{
		quicreuse.OverrideSourceIPSelector(func() (quicreuse.SourceIPSelector, error) { return src, nil }),
		quicreuse.OverrideListenUDP(func(_ string, a *net.UDPAddr) (net.PacketConn, error) {
			c := nw.NewEndpoint(a, link)
			ep.conn.Store(c)
			return c, nil
		}),
	}
	cm, err := connmgr.NewConnManager(connLow, connHigh, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", ep.addr.IP, ep.addr.Port)),
		libp2p.QUICReuse(newConnManager, reuse...),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		// Identify's address discovery stalls virtual time (go-libp2p's
		// x/simlibp2p says so too); every address here is known anyway.
		libp2p.DisableIdentifyAddressDiscovery(),
	)
	if err != nil {
		return nil, fmt.Errorf("sim: libp2p host: %w", err)
	}
	return h, nil
}

// Connection manager watermarks: a relay's as `obol relay` sets them
// (Config.RelayConns may lower them), a client's as dht.NewHost's
// defaults.
const (
	relayConnLow, relayConnHigh   = 1024, 2048
	clientConnLow, clientConnHigh = 64, 256
)

// newConnManager is quicreuse's constructor with the close hook a conn
// manager passed in from outside needs (as go-libp2p's x/simlibp2p does).
func newConnManager(l fx.Lifecycle, reset quic.StatelessResetKey, token quic.TokenGeneratorKey, opts ...quicreuse.Option) (*quicreuse.ConnManager, error) {
	cm, err := quicreuse.NewConnManager(reset, token, opts...)
	if err != nil {
		return nil, err
	}
	l.Append(fx.StopHook(cm.Close))
	return cm, nil
}

// relayConns are the relays' watermarks under cfg.
func relayConns(cfg Config) (low, high int) {
	if cfg.RelayConns > 0 {
		return max(cfg.RelayConns/2, 1), cfg.RelayConns
	}
	return relayConnLow, relayConnHigh
}
