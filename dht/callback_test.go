package dht

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// A public peer asks a rendezvous for a callback from a relay behind it;
// the relay dials the peer straight back, at the address the rendezvous
// saw, and the peer's new connection is direct and inbound. A forward
// from a peer the relay holds no reservation at is refused, and a
// rendezvous passes on nothing for a relay it holds no connection from.
func TestCallbackDialsBack(t *testing.T) {
	rdv := newRendezvousHost(t, false)
	relay := newRendezvousHost(t, false)
	from := newRendezvousHost(t, false)
	stop := ServeCallbackRendezvous(rdv)
	defer stop()
	var ours peer.ID = rdv.ID()
	stopRelay := ServeCallbacks(relay, CallbackConfig{FromRendezvous: func(p peer.ID) bool { return p == ours }, AllowPrivate: true})
	defer stopRelay()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := relay.Connect(ctx, infoOf(rdv)); err != nil { // its reservation's connection
		t.Fatal(err)
	}

	if err := RequestCallback(ctx, from, infoOf(rdv), relay.ID()); err != nil {
		t.Fatalf("callback: %v", err)
	}
	// The answer comes back through the rendezvous, a round trip after
	// the relay's handshake ended; the peer's side ends half of one after.
	conns := from.Network().ConnsToPeer(relay.ID())
	for deadline := time.Now().Add(5 * time.Second); len(conns) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		conns = from.Network().ConnsToPeer(relay.ID())
	}
	if len(conns) != 1 || conns[0].Stat().Limited || conns[0].Stat().Direction != network.DirInbound {
		t.Fatalf("want one direct connection the relay dialed, have %d %+v", len(conns), conns)
	}

	// The same rendezvous, but one the relay does not hold: refused.
	ours = ""
	other := newRendezvousHost(t, false)
	if err := RequestCallback(ctx, other, infoOf(rdv), relay.ID()); !errors.Is(err, CallbackRefused) {
		t.Fatalf("callback through a rendezvous the relay does not hold: %v", err)
	}
	if len(other.Network().ConnsToPeer(relay.ID())) != 0 {
		t.Fatal("the relay dialed back on a refused callback")
	}
	// A relay the rendezvous holds no connection from.
	stranger := newRendezvousHost(t, false)
	if err := RequestCallback(ctx, other, infoOf(rdv), stranger.ID()); !errors.Is(err, CallbackUnknown) {
		t.Fatalf("callback to a relay the rendezvous does not hold: %v", err)
	}
	if len(rdv.Network().ConnsToPeer(stranger.ID())) != 0 {
		t.Fatal("the rendezvous dialed a relay for a stranger")
	}
}

// A relay behind a NAT dials back only QUIC addresses, public ones unless
// told otherwise, never through a rendezvous.
func TestCallbackDialable(t *testing.T) {
	for _, c := range []struct {
		addr    string
		private bool
		want    bool
	}{
		{"/ip4/203.0.113.7/udp/4001/quic-v1", false, false}, // documentation range: not public
		{"/ip4/8.8.8.8/udp/4001/quic-v1", false, true},
		{"/ip4/10.0.0.1/udp/4001/quic-v1", false, false},
		{"/ip4/10.0.0.1/udp/4001/quic-v1", true, true},
		{"/ip4/8.8.8.8/tcp/4001", false, false},
		{"/ip4/0.0.0.0/udp/4001/quic-v1", true, false},
		{"/ip4/224.0.0.1/udp/4001/quic-v1", true, false},
		{"/ip4/8.8.8.8/udp/4001/quic-v1/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo/p2p-circuit", true, false},
	} {
		if got := dialable(ma.StringCast(c.addr), c.private); got != c.want {
			t.Errorf("dialable(%s, private %v) = %v, want %v", c.addr, c.private, got, c.want)
		}
	}
}

func callbackSeeds(t testing.TB) [][]byte {
	id, err := peer.Decode("12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo")
	if err != nil {
		t.Fatal(err)
	}
	ask, err := callbackMsg{Kind: callbackKindAsk, Peer: id}.encode()
	if err != nil {
		t.Fatal(err)
	}
	pass, err := callbackMsg{Kind: callbackKindPass, Peer: id, Addr: ma.StringCast("/ip4/8.8.8.8/udp/4001/quic-v1")}.encode()
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{ask, pass}
}

// Every message that is not exactly one well-formed request or forward
// is refused: other versions and kinds, empty and oversized fields,
// truncation, and trailing bytes.
func TestCallbackDecodeRefuses(t *testing.T) {
	seeds := callbackSeeds(t)
	ask, pass := seeds[0], seeds[1]
	if m, err := decodeCallback(ask, callbackKindAsk); err != nil || m.Addr != nil {
		t.Fatalf("request: %+v, %v", m, err)
	}
	if m, err := decodeCallback(pass, callbackKindPass); err != nil || m.Addr == nil {
		t.Fatalf("forward: %+v, %v", m, err)
	}
	bad := [][]byte{nil, {1}, {1, 0}, {1, 0, 0}}
	bad = append(bad, append([]byte{2}, ask[1:]...)) // version
	bad = append(bad, append([]byte(nil), ask...))
	bad[len(bad)-1][1] = callbackKindPass // a request where a forward is wanted
	for n := range len(ask) {
		bad = append(bad, ask[:n])
	}
	bad = append(bad, append(append([]byte(nil), ask...), 0))
	long := append([]byte{1, 0, MaxCallbackID + 1}, bytes.Repeat([]byte{0}, MaxCallbackID+1)...)
	bad = append(bad, long)
	notID := append([]byte{1, 0, 4}, 0xff, 0xff, 0xff, 0xff)
	bad = append(bad, notID)
	for i, b := range bad {
		if _, err := decodeCallback(b, callbackKindAsk); err == nil {
			t.Errorf("request %d (%x) decoded", i, b)
		}
	}
	badPass := [][]byte{append(append([]byte(nil), pass...), 0)}
	for n := range len(pass) {
		badPass = append(badPass, pass[:n])
	}
	idEnd := 3 + int(pass[2])
	zeroAddr := append(append([]byte(nil), pass[:idEnd]...), 0)
	badPass = append(badPass, zeroAddr)
	junk := append(append([]byte(nil), pass[:idEnd]...), 3, 0xff, 0xff, 0xff)
	badPass = append(badPass, junk)
	for i, b := range badPass {
		if _, err := decodeCallback(b, callbackKindPass); err == nil {
			t.Errorf("forward %d (%x) decoded", i, b)
		}
	}
}

func FuzzDecodeCallback(f *testing.F) {
	for _, s := range callbackSeeds(f) {
		f.Add(s, byte(0))
		f.Add(s, byte(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, kind byte) {
		kind &= 1
		m, err := decodeCallback(b, kind)
		if err != nil {
			return
		}
		again, err := m.encode()
		if err != nil {
			t.Fatalf("decoded %x but does not encode: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, encodes %x", b, again)
		}
	})
}

// A relay behind a NAT takes a forward from a public relay it keeps a
// connection to (one it dialed), naming a public relay of its view, and
// dials that relay at its published addresses: not at the address the
// forwarder passes on, which a lying forwarder could aim anywhere. Over a
// connection the forwarder dialed, or naming a peer outside its view
// through a peer that is not its rendezvous, it refuses.
func TestCallbackThroughKeptConnection(t *testing.T) {
	kept := newRendezvousHost(t, false)
	relay := newRendezvousHost(t, false)
	from := newRendezvousHost(t, false)
	defer ServeCallbackRendezvous(kept)()
	defer ServeCallbacks(relay, CallbackConfig{
		FromRendezvous: func(peer.ID) bool { return false },
		RelayAddrs: func(p peer.ID) []ma.Multiaddr {
			if p == from.ID() {
				return from.Addrs()
			}
			return nil
		},
		AllowPrivate: true})()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := relay.Connect(ctx, infoOf(kept)); err != nil { // a kept connection
		t.Fatal(err)
	}
	if err := RequestCallback(ctx, from, infoOf(kept), relay.ID()); err != nil {
		t.Fatalf("callback through a kept connection: %v", err)
	}

	// A forwarder passing on a false address: the relay dials the
	// relay's published address all the same.
	liar := newRendezvousHost(t, false)
	if err := relay.Connect(ctx, infoOf(liar)); err != nil {
		t.Fatal(err)
	}
	from.Network().ClosePeer(relay.ID())
	for relay.Network().Connectedness(from.ID()) == network.Connected { // so that it dials afresh
		if ctx.Err() != nil {
			t.Fatal("the relay never saw the connection close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := forward(t, ctx, liar, relay.ID(), from.ID(), "/ip4/127.0.0.1/udp/9/quic-v1"); st != CallbackDialed {
		t.Fatalf("forward with a false address: %v", st)
	}
	for _, c := range relay.Network().ConnsToPeer(from.ID()) {
		if got := c.RemoteMultiaddr(); !slices.ContainsFunc(from.Addrs(), got.Equal) {
			t.Fatalf("the relay dialed %v, not the relay's published address", got)
		}
	}

	// Over a connection the forwarder dialed: refused.
	pushy := newRendezvousHost(t, false)
	if err := pushy.Connect(ctx, infoOf(relay)); err != nil {
		t.Fatal(err)
	}
	if st := forward(t, ctx, pushy, relay.ID(), from.ID(), from.Addrs()[0].String()); st != CallbackRefused {
		t.Fatalf("forward over a connection the forwarder dialed: %v", st)
	}
	// Naming a peer outside the view, through a kept connection that is
	// no rendezvous: refused.
	stranger := newRendezvousHost(t, false)
	if st := forward(t, ctx, liar, relay.ID(), stranger.ID(), stranger.Addrs()[0].String()); st != CallbackRefused {
		t.Fatalf("forward naming a peer outside the view: %v", st)
	}
	if len(relay.Network().ConnsToPeer(stranger.ID())) != 0 {
		t.Fatal("the relay dialed a peer outside its view")
	}
}

// forward passes a forward naming from at addr from fwd to relay, as a
// rendezvous does, and returns the answer.
func forward(t *testing.T, ctx context.Context, fwd host.Host, relay, from peer.ID, addr string) CallbackStatus {
	t.Helper()
	msg, err := callbackMsg{Kind: callbackKindPass, Peer: from, Addr: ma.StringCast(addr)}.encode()
	if err != nil {
		t.Fatal(err)
	}
	s, err := fwd.NewStream(network.WithNoDial(ctx, "test"), relay, CallbackProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write(msg); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	var st [1]byte
	if _, err := io.ReadFull(s, st[:]); err != nil {
		t.Fatal(err)
	}
	return CallbackStatus(st[0])
}
