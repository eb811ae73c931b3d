package dht

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	xrate "github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/obolnet/obol/internal/lazystream"
)

// A callback is how a public peer gets a direct connection to a relay
// behind a cone NAT without a relayed connection (specs/02-dht.md
// §Callbacks). The peer asks a forwarder that holds a connection from
// the relay (one of its rendezvous, or a public relay it keeps a
// connection to); the forwarder passes the relay the peer's ID and the
// address it sees the peer's connection come from; the relay dials the
// peer straight away, at its published addresses if it is a public
// relay of the view, else at that address if the forwarder is one of
// its rendezvous. The peer's side of the new connection is up about two
// round trips after its request went out, where a relayed connection
// with its libp2p handshake, identify and connection reversal takes
// about ten.
//
//	request  (peer → rendezvous): 0x01 0x00 len(target) target
//	forward  (rendezvous → relay): 0x01 0x01 len(from) from len(addr) addr
//	answer   (back the same way):  one status byte
//
// target and from are binary peer IDs of 1 to MaxCallbackID bytes, addr
// a binary multiaddr of 1 to MaxCallbackAddr bytes. Nothing may follow.
const (
	CallbackProtocol = protocol.ID("/obol/callback/1")
	callbackVersion  = 1
	MaxCallbackID    = 64  // bytes of a binary peer ID
	MaxCallbackAddr  = 64  // bytes of a binary multiaddr
	callbackKindAsk  = 0   // request
	callbackKindPass = 1   // forward
	maxCallbackMsg   = 132 // 2 + 1 + MaxCallbackID + 1 + MaxCallbackAddr
)

// CallbackStatus is a callback's answer.
type CallbackStatus byte

const (
	CallbackDialed  CallbackStatus = iota // the relay dialed the peer and the connection is up
	CallbackRefused                       // not from a rendezvous of the relay, or not a public address
	CallbackUnknown                       // the rendezvous holds no connection from that relay
	CallbackBusy                          // a rate limit
	CallbackFailed                        // the relay's dial failed
)

func (s CallbackStatus) Error() string {
	switch s {
	case CallbackRefused:
		return "callback refused"
	case CallbackUnknown:
		return "callback: the rendezvous does not hold that relay"
	case CallbackBusy:
		return "callback: rate limited"
	case CallbackFailed:
		return "callback: the relay could not dial back"
	}
	return fmt.Sprintf("callback status %d", byte(s))
}

// ErrCallbackMalformed is a callback message that does not decode.
var ErrCallbackMalformed = errors.New("dht: malformed callback message")

// callbackMsg is a request (Addr nil) or a forward.
type callbackMsg struct {
	Kind byte
	Peer peer.ID // the target of a request; the requester of a forward
	Addr ma.Multiaddr
}

func (m callbackMsg) encode() ([]byte, error) {
	id := []byte(m.Peer)
	if len(id) == 0 || len(id) > MaxCallbackID {
		return nil, ErrCallbackMalformed
	}
	b := append([]byte{callbackVersion, m.Kind, byte(len(id))}, id...)
	if m.Kind == callbackKindPass {
		a := m.Addr.Bytes()
		if len(a) == 0 || len(a) > MaxCallbackAddr {
			return nil, ErrCallbackMalformed
		}
		b = append(append(b, byte(len(a))), a...)
	}
	return b, nil
}

// decodeCallback decodes one whole message of the kind wanted.
func decodeCallback(b []byte, kind byte) (callbackMsg, error) {
	if len(b) < 3 || b[0] != callbackVersion || b[1] != kind {
		return callbackMsg{}, ErrCallbackMalformed
	}
	n := int(b[2])
	if n == 0 || n > MaxCallbackID || len(b) < 3+n {
		return callbackMsg{}, ErrCallbackMalformed
	}
	id, err := peer.IDFromBytes(b[3 : 3+n])
	if err != nil {
		return callbackMsg{}, ErrCallbackMalformed
	}
	m := callbackMsg{Kind: kind, Peer: id}
	rest := b[3+n:]
	if kind == callbackKindPass {
		if len(rest) < 1 {
			return callbackMsg{}, ErrCallbackMalformed
		}
		k := int(rest[0])
		if k == 0 || k > MaxCallbackAddr || len(rest) != 1+k {
			return callbackMsg{}, ErrCallbackMalformed
		}
		if m.Addr, err = ma.NewMultiaddrBytes(rest[1:]); err != nil {
			return callbackMsg{}, ErrCallbackMalformed
		}
		rest = nil
	}
	if len(rest) != 0 {
		return callbackMsg{}, ErrCallbackMalformed
	}
	return m, nil
}

// readCallback reads one message: the sender closes its side after it.
func readCallback(s network.Stream, kind byte) (callbackMsg, error) {
	b, err := io.ReadAll(io.LimitReader(s, maxCallbackMsg+1))
	if err != nil {
		return callbackMsg{}, err
	}
	if len(b) > maxCallbackMsg {
		return callbackMsg{}, ErrCallbackMalformed
	}
	return decodeCallback(b, kind)
}

// callbackTimeout bounds every step of a callback: reading a message,
// and the relay's dial.
const callbackTimeout = 10 * time.Second

// RequestCallback asks rendezvous rdv to have target dial this host back,
// and returns once target answered: nil when its connection is up. The
// host must be reachable at the address it reaches rdv from.
func RequestCallback(ctx context.Context, h host.Host, rdv peer.AddrInfo, target peer.ID) error {
	req, err := callbackMsg{Kind: callbackKindAsk, Peer: target}.encode()
	if err != nil {
		return err
	}
	if len(rdv.Addrs) > 0 {
		h.Peerstore().AddAddrs(rdv.ID, rdv.Addrs, time.Minute)
	}
	ctx = network.WithForceDirectDial(ctx, "obol callback: the caller backs off")
	s, err := openLazy(ctx, h, rdv, CallbackProtocol)
	if err != nil {
		return err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if _, err := s.Write(req); err != nil {
		s.Reset()
		return err
	}
	_ = s.CloseWrite()
	var st [1]byte
	if _, err := io.ReadFull(s, st[:]); err != nil {
		return fmt.Errorf("callback: no answer: %w", err)
	}
	if CallbackStatus(st[0]) != CallbackDialed {
		return CallbackStatus(st[0])
	}
	return nil
}

// openLazy opens a stream of protocol proto to p on a direct
// connection, dialing one if need be, naming the protocol in its first
// flight rather than after identify on a new connection (lazystream).
func openLazy(ctx context.Context, h host.Host, p peer.AddrInfo, proto protocol.ID) (network.Stream, error) {
	if err := h.Connect(ctx, p); err != nil {
		return nil, err
	}
	return lazystream.Open(ctx, h.Network().ConnsToPeer(p.ID), proto)
}

func answerCallback(s network.Stream, st CallbackStatus) {
	_, _ = s.Write([]byte{byte(st)})
	_ = s.Close()
}

// ServeCallbackRendezvous passes callback requests on to the peers h
// holds connections from: a public relay's side, next to its circuit
// relay v2 service. The relay behind the NAT decides whether to dial.
// Call the result to stop.
func ServeCallbackRendezvous(h host.Host) func() {
	limit := perSourceLimiter()
	h.SetStreamHandler(CallbackProtocol, func(s network.Stream) {
		_ = s.SetDeadline(time.Now().Add(callbackTimeout))
		from := s.Conn().RemotePeer()
		src := s.Conn().RemoteMultiaddr()
		req, err := readCallback(s, callbackKindAsk)
		if err != nil {
			s.Reset()
			return
		}
		if s.Conn().Stat().Limited || !allowSource(limit, src) {
			answerCallback(s, CallbackBusy)
			return
		}
		if req.Peer == from || req.Peer == h.ID() || h.Network().Connectedness(req.Peer) != network.Connected {
			answerCallback(s, CallbackUnknown)
			return
		}
		fwd, err := callbackMsg{Kind: callbackKindPass, Peer: from, Addr: src}.encode()
		if err != nil {
			answerCallback(s, CallbackRefused)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), callbackTimeout)
		defer cancel()
		// Only on a connection already up: the rendezvous never dials
		// the relay for a stranger.
		out, err := h.NewStream(network.WithNoDial(ctx, "obol callback: a held connection only"), req.Peer, CallbackProtocol)
		if err != nil {
			answerCallback(s, CallbackUnknown)
			return
		}
		defer out.Close()
		_ = out.SetDeadline(time.Now().Add(callbackTimeout))
		if _, err := out.Write(fwd); err != nil {
			out.Reset()
			answerCallback(s, CallbackFailed)
			return
		}
		_ = out.CloseWrite()
		var st [1]byte
		if _, err := io.ReadFull(out, st[:]); err != nil {
			answerCallback(s, CallbackFailed)
			return
		}
		answerCallback(s, CallbackStatus(st[0]))
	})
	return func() { h.RemoveStreamHandler(CallbackProtocol) }
}

// allowSource takes a token from the bucket of a's address.
func allowSource(l *xrate.Limiter, a ma.Multiaddr) bool {
	ip, err := manet.ToIP(a)
	if err != nil {
		return false
	}
	addr, ok := netip.AddrFromSlice(ip)
	return ok && l.Allow(addr.Unmap())
}

// CallbackConfig configures a relay behind a cone NAT's side of
// callbacks.
type CallbackConfig struct {
	// FromRendezvous reports whether p is a rendezvous this relay holds
	// a reservation at. Such a rendezvous's forward is dialed back at the
	// address it passes on.
	FromRendezvous func(p peer.ID) bool
	// RelayAddrs, if set, are the published direct addresses of p if p is
	// a public relay of this relay's view, else nil. A forward naming
	// such a relay is dialed back at those addresses only, whoever
	// passed it on over a connection this relay dialed (a rendezvous or
	// one of its kept connections): the address passed on is not used,
	// so no forwarder can point the dial anywhere but at a relay.
	RelayAddrs func(p peer.ID) []ma.Multiaddr
	// AllowPrivate dials back private addresses too (local test
	// networks); otherwise only public ones.
	AllowPrivate bool
	Logger       *slog.Logger
}

// ServeCallbacks dials back the peers a rendezvous or a kept connection
// passes on: a relay behind a cone NAT's side. It dials a public relay
// of its view at its published addresses, and any other peer only at
// the address one of its own rendezvous saw; directly, within
// RelayedConnRate a second after a burst of RelayedConnBurst per
// forwarder, as for relayed connections. Call the result to stop.
func ServeCallbacks(h host.Host, cfg CallbackConfig) func() {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	perForwarder := newPeerLimits(maxRelayedLimiters) // as relayed connections per rendezvous
	h.SetStreamHandler(CallbackProtocol, func(s network.Stream) {
		_ = s.SetDeadline(time.Now().Add(callbackTimeout))
		rdv := s.Conn().RemotePeer()
		fwd, err := readCallback(s, callbackKindPass)
		if err != nil {
			s.Reset()
			return
		}
		var addrs []ma.Multiaddr
		if cfg.RelayAddrs != nil && s.Conn().Stat().Direction == network.DirOutbound {
			for _, a := range cfg.RelayAddrs(fwd.Peer) {
				if dialable(a, cfg.AllowPrivate) {
					addrs = append(addrs, a)
				}
			}
		}
		if len(addrs) == 0 && cfg.FromRendezvous != nil && cfg.FromRendezvous(rdv) && dialable(fwd.Addr, cfg.AllowPrivate) {
			addrs = []ma.Multiaddr{fwd.Addr}
		}
		switch {
		case len(addrs) == 0 || fwd.Peer == h.ID():
			answerCallback(s, CallbackRefused)
			return
		case !perForwarder.allow(rdv, time.Now(), RelayedConnRate, RelayedConnBurst):
			answerCallback(s, CallbackBusy)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), callbackTimeout)
		defer cancel()
		ctx = network.WithForceDirectDial(ctx, "obol callback")
		if h.Network().Connectedness(fwd.Peer) != network.Connected { // no direct connection
			// A fresh dial to exactly those addresses: the peer's ID is
			// checked by the handshake.
			h.Peerstore().AddAddrs(fwd.Peer, addrs, time.Minute)
			if err := h.Connect(ctx, peer.AddrInfo{ID: fwd.Peer, Addrs: addrs}); err != nil {
				cfg.Logger.Debug("callback dial failed", "err", err)
				answerCallback(s, CallbackFailed)
				return
			}
		}
		answerCallback(s, CallbackDialed)
	})
	return func() { h.RemoveStreamHandler(CallbackProtocol) }
}

// dialable reports whether a is a QUIC address a callback may dial: an
// IP and a UDP port, public unless allowPrivate.
func dialable(a ma.Multiaddr, allowPrivate bool) bool {
	if a == nil {
		return false
	}
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return false
	}
	if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err != nil {
		return false
	}
	ip, err := manet.ToIP(a)
	if err != nil || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	return allowPrivate || manet.IsPublicAddr(a)
}
