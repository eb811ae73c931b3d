package hidden

import (
	"context"
	"net"

	"github.com/obolnet/obol/circuit/socks"
)

// Route returns a socks.Dialer that sends requests for .obol hosts to hs
// and every other request to other. Hidden-service errors keep the kinds
// DialPort gives them, from which the proxy chooses its reply: a bad
// address or an unknown or unreachable service is NotFound (SOCKS5 0x04,
// host unreachable), a timeout is Timeout (0x06).
func Route(hs *Connector, other socks.Dialer) socks.Dialer {
	return socks.DialerFunc(func(ctx context.Context, req socks.Request) (net.Conn, error) {
		if req.IP.IsValid() || !IsAddress(req.Host) {
			return other.DialStream(ctx, req)
		}
		return hs.DialPort(ctx, req.Host, req.Port)
	})
}
