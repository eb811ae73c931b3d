package hidden

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// DropSession closes the session with host but keeps its descriptor, so
// that the next Dial meets the service again from a warm cache.
func (c *Client) DropSession(host string) {
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
func (c *Client) GuardLayers() (guards, vanguards []peer.ID) { return c.net.guards.snapshot() }
