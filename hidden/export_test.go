package hidden

import (
	"context"
	"crypto/rand"
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

// DropSession closes the session with host but keeps its descriptor, so
// that the next Dial meets the service again from a warm cache.
func (c *Connector) DropSession(host string) {
	addr, err := descriptor.ParseHSAddress(host)
	if err != nil {
		return
	}
	c.mu.Lock()
	s := c.sessions[addr]
	delete(c.sessions, addr)
	c.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// GuardLayers returns the service's guards and vanguards.
func (l *Listener) GuardLayers() (guards, vanguards []peer.ID) { return l.cfg.guards.snapshot() }

// GuardLayers returns the client's guards and vanguards.
func (c *Connector) GuardLayers() (guards, vanguards []peer.ID) { return c.net.guards.snapshot() }

// IntroduceNoWork sends one introduction without proof of work to the
// service at host through its intro point i (modulo their number), naming
// rp as the rendezvous point, and returns the intro point's status: what
// a flooding client does.
func (c *Connector) IntroduceNoWork(ctx context.Context, host string, i int, rp client.Hop) (byte, error) {
	addr, err := descriptor.ParseHSAddress(host)
	if err != nil {
		return 0, err
	}
	desc, _, err := c.descriptor(ctx, addr)
	if err != nil {
		return 0, err
	}
	ip := desc.content.Intros[i%len(desc.content.Intros)]
	var cookie [descriptor.CookieLen]byte
	rand.Read(cookie[:])
	payload := descriptor.IntroPayload{Cookie: cookie, OnionKey: rp.OnionKey, Relay: rp.Peer.ID}
	_, msg, err := startHandshake(rand.Reader, ip, addr, payload.Marshal())
	if err != nil {
		return 0, err
	}
	last := client.Hop{Peer: peer.AddrInfo{ID: ip.Relay}, OnionKey: ip.OnionKey}
	var ack chan []byte
	circ, _, err := c.net.buildToWith(ctx, &last, 0, nil, func(k *control) []circuit.RelayCell {
		ack = k.expect(descriptor.CmdIntroduceAck, 1)
		m := descriptor.Introduce{AuthKey: ip.AuthKey, Handshake: msg}
		return []circuit.RelayCell{cell(descriptor.CmdIntroduce1, m.Marshal())}
	})
	if err != nil {
		return 0, err
	}
	defer circ.Close()
	select {
	case b := <-ack:
		if len(b) != 1 {
			return 0, errors.New("bad INTRODUCE_ACK")
		}
		return b[0], nil
	case <-circ.Done():
		return 0, errors.New("intro circuit closed")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// HasDescriptor reports whether the client holds a descriptor of the
// service at host.
func (c *Connector) HasDescriptor(host string) bool {
	addr, err := descriptor.ParseHSAddress(host)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.descs[addr] != nil
}

// OnIntroduce calls f with the relay of each intro point an introduction
// is built to, until the test ends.
func OnIntroduce(t interface{ Cleanup(func()) }, f func(peer.ID)) {
	testHookIntroduce.Store(&f)
	t.Cleanup(func() { testHookIntroduce.Store(nil) })
}
