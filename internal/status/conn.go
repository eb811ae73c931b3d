package status

import "net"

// CountingConn wraps c so that add is told the size of every read and
// write: how a client feeds its stream bytes to its status.
func CountingConn(c net.Conn, add func(n int)) net.Conn {
	return countingConn{c, add}
}

type countingConn struct {
	net.Conn
	add func(int)
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.add(n)
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.add(n)
	return n, err
}
