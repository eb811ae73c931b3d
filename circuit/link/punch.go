package link

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
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

// dialPunched opens the channel's stream to p on a direct connection
// that a hole punch through p's rendezvous set up.
func (m *Manager) dialPunched(ctx context.Context, p peer.ID) (network.Stream, error) {
	sub, err := m.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	// The relayed connection carries the libp2p handshake, identify and
	// DCUtR; no stream of ours is opened on it.
	limited := network.WithAllowLimitedConn(ctx, "obol link: rendezvous for a hole punch")
	if err := m.host.Connect(limited, peer.AddrInfo{ID: p}); err != nil {
		return nil, fmt.Errorf("through a rendezvous: %w", err)
	}
	for m.host.Network().Connectedness(p) != network.Connected {
		select {
		case <-sub.Out():
		case <-ctx.Done():
			return nil, fmt.Errorf("hole punch: %w", ctx.Err())
		}
	}
	direct := network.WithForceDirectDial(ctx, "obol link: only a direct connection carries cells")
	s, err := m.host.NewStream(direct, p, Protocol)
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
