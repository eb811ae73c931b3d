package hidden

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"

	"github.com/obolnet/obol/circuit/errkind"
)

// Streams are multiplexed over the tunnel with yamux. A stream starts
// with the virtual port (2 bytes, big endian) the client asks for.

func yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	c.EnableKeepAlive = false
	c.MaxIncomingStreams = 256
	c.ReadBufSize = 0
	return c
}

// Addr is the address of one end of a hidden-service connection: the
// service's .obol name and the virtual port.
type Addr struct {
	Service string
	Port    uint16
}

// Network is "obol".
func (Addr) Network() string { return "obol" }

func (a Addr) String() string { return net.JoinHostPort(a.Service, strconv.Itoa(int(a.Port))) }

// Conn is one stream between a client and a service.
type Conn struct {
	*yamux.Stream
	local, remote net.Addr
	port          uint16
}

// LocalAddr is the service's address on the service side, a client
// placeholder on the client side.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the service's address on the client side; on the service
// side it says nothing about the client.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// VirtualPort is the port the client asked for.
func (c *Conn) VirtualPort() uint16 { return c.port }

// Read reads what the far end sent. Its errors carry kinds (errkind.Of),
// as those of Dial do: a deadline is a timeout, a connection closed here
// is closed, and a connection lost with its circuits, or reset by the far
// end, asks for another path.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	return n, connErr(err)
}

// Write sends p to the far end; its errors carry kinds as Read's do.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Stream.Write(p)
	return n, connErr(err)
}

func connErr(err error) error {
	switch {
	case err == nil || err == io.EOF || errkind.Of(err) != errkind.Unknown:
		return err
	case errors.Is(err, yamux.ErrStreamClosed), errors.Is(err, yamux.ErrSessionShutdown):
		return errkind.Wrap(errkind.Closed, err)
	}
	return errkind.Wrap(errkind.OtherPath, err)
}

const portHeaderTimeout = 30 * time.Second

func writePort(s *yamux.Stream, port uint16) error {
	_, err := s.Write(binary.BigEndian.AppendUint16(nil, port))
	return err
}

func readPort(s *yamux.Stream) (uint16, error) {
	var b [2]byte
	s.SetReadDeadline(time.Now().Add(portHeaderTimeout))
	defer s.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(s, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b[:]), nil
}
