package link

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/internal/lazystream"
)

// A relay behind a cone NAT publishes only /p2p-circuit addresses
// through hole-punch rendezvous (specs/02-dht.md §Reachability). A
// channel to it still runs on a direct connection only: the dialer opens
// a limited connection through a rendezvous, the relay behind the NAT,
// seeing it come in, starts DCUtR on it, and the channel's stream opens
// once a direct connection is up — never on the relayed one, whose
// rendezvous would otherwise see the cells.

// behindRendezvous reports whether addrs include a /p2p-circuit address.
func behindRendezvous(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			return true
		}
	}
	return false
}

// callbackWait bounds how long a channel waits for a callback before it
// tries a relayed connection: a public relay's callback takes a few round
// trips, and the relay answers a refusal at once.
const callbackWait = 5 * time.Second

// dialPunched opens the channel's stream to ai on a direct connection
// that ai dialed back on a callback (Config.Callback) or that a hole
// punch through ai's rendezvous set up.
func (m *Manager) dialPunched(ctx context.Context, ai peer.AddrInfo) (network.Stream, error) {
	p := ai.ID
	sub, err := m.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	if m.cfg.Callback != nil {
		if rdv, ok := m.pickForwarder(ai); ok {
			s, err := m.dialBack(ctx, sub, rdv, p)
			switch {
			case err == nil:
				m.cfg.Logger.Debug("link opened on a callback")
				return s, nil
			case ctx.Err() != nil:
				return nil, err
			}
			m.cfg.Logger.Debug("no callback; trying a relayed connection", "err", err)
		}
	}
	// The relayed connection carries the libp2p handshake, identify and
	// DCUtR; no stream of ours is opened on it.
	limited := network.WithAllowLimitedConn(ctx, "obol link: rendezvous for a hole punch")
	if err := m.host.Connect(limited, peer.AddrInfo{ID: p}); err != nil {
		return nil, fmt.Errorf("through a rendezvous: %w", err)
	}
	for m.host.Network().Connectedness(p) != network.Connected { // a direct connection
		select {
		case <-sub.Out():
		case <-ctx.Done():
			return nil, fmt.Errorf("hole punch: %w", ctx.Err())
		}
	}
	s, err := openOnDirect(ctx, m.host.Network().ConnsToPeer(p))
	if err != nil {
		return nil, err
	}
	// The relayed connection has done its work: closing it ends what
	// the rendezvous sees of this pair at the punch.
	for _, c := range m.host.Network().ConnsToPeer(p) {
		if c.Stat().Limited {
			_ = c.Close()
		}
	}
	return s, nil
}

// dialBack asks rendezvous rdv for a callback from p and opens the
// channel's stream on p's connection as soon as it is up, without
// waiting for the answer that follows it through the rendezvous.
func (m *Manager) dialBack(ctx context.Context, sub event.Subscription, rdv peer.AddrInfo, p peer.ID) (network.Stream, error) {
	cctx, cancel := context.WithTimeout(ctx, callbackWait)
	defer cancel()
	failed := make(chan error, 1)
	go func() {
		if err := m.cfg.Callback(cctx, rdv, p); err != nil {
			failed <- err
		}
	}()
	for m.host.Network().Connectedness(p) != network.Connected {
		select {
		case <-sub.Out():
		case err := <-failed:
			if m.host.Network().Connectedness(p) != network.Connected {
				return nil, err
			}
		case <-cctx.Done():
			return nil, fmt.Errorf("callback: %w", cctx.Err())
		}
	}
	return openOnDirect(ctx, m.host.Network().ConnsToPeer(p))
}

// pickForwarder is the peer to ask for a callback from ai: a rendezvous
// of ai's this node is connected to, else the first of
// Config.Forwarders, else ai's first rendezvous.
func (m *Manager) pickForwarder(ai peer.AddrInfo) (peer.AddrInfo, bool) {
	rdv, ok := pickRendezvous(ai.Addrs, m.host.Network())
	if ok && m.host.Network().Connectedness(rdv.ID) == network.Connected {
		return rdv, true
	}
	if m.cfg.Forwarders != nil {
		if fwd := m.cfg.Forwarders(ai.ID); len(fwd) > 0 {
			return fwd[0], true
		}
	}
	return rdv, ok
}

// pickRendezvous is the rendezvous of one of the /p2p-circuit addresses
// of addrs, its peer ID and the address before it: one that n holds a
// direct connection to, which spares a handshake, or else the first.
func pickRendezvous(addrs []ma.Multiaddr, n network.Network) (peer.AddrInfo, bool) {
	var first peer.AddrInfo
	found := false
	for _, a := range addrs {
		head, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
		if len(head) == 0 || len(head) == len(a) {
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(head)
		if err != nil {
			continue
		}
		if n.Connectedness(ai.ID) == network.Connected { // directly
			return *ai, true
		}
		if !found {
			first, found = *ai, true
		}
	}
	return first, found
}

// openOnDirect opens the channel's stream on the first direct connection
// of conns, naming the protocol in its first flight (multistream-select's
// lazy mode) rather than after identify has run on the new connection:
// the peer's descriptor says it is a relay, identify over the relayed
// connection has said so again, and a peer that does not speak the
// protocol fails the stream at its first read. This spares the round
// trip libp2p's NewStream waits for identify on a fresh connection.
func openOnDirect(ctx context.Context, conns []network.Conn) (network.Stream, error) {
	return lazystream.Open(ctx, conns, Protocol)
}
