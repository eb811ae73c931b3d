package hidden

import "github.com/obolnet/obol/descriptor"

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
