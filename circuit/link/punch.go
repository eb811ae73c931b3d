package link

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"
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

// openOnDirect opens the channel's stream on the first direct connection
// of conns, naming the protocol in its first flight (multistream-select's
// lazy mode) rather than after identify has run on the new connection:
// the peer's descriptor says it is a relay, identify over the relayed
// connection has said so again, and a peer that does not speak the
// protocol fails the stream at its first read. This spares the round
// trip libp2p's NewStream waits for identify on a fresh connection.
func openOnDirect(ctx context.Context, conns []network.Conn) (network.Stream, error) {
	for _, c := range conns {
		if c.Stat().Limited {
			continue
		}
		s, err := c.NewStream(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.SetProtocol(Protocol); err != nil {
			s.Reset()
			return nil, err
		}
		return &lazyStream{Stream: s, rw: msmux.NewMSSelect(s, Protocol)}, nil
	}
	return nil, errors.New("no direct connection")
}

// lazyStream is a stream whose protocol header goes out with its first
// write and whose answer is read with its first read.
type lazyStream struct {
	network.Stream
	rw io.ReadWriteCloser
}

func (s *lazyStream) Read(b []byte) (int, error)  { return s.rw.Read(b) }
func (s *lazyStream) Write(b []byte) (int, error) { return s.rw.Write(b) }
func (s *lazyStream) Close() error                { return s.rw.Close() }

// CloseWrite sends the protocol header first if nothing was written.
func (s *lazyStream) CloseWrite() error {
	if f, ok := s.rw.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
	return s.Stream.CloseWrite()
}
