package hidden

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/obolnet/obol/circuit/socks"
	"github.com/obolnet/obol/descriptor"
)

// Route returns a socks.Dialer that sends requests for .obol hosts to hs
// and every other request to other. Hidden-service errors are mapped to
// the socks sentinels: a bad address to ErrHostUnreachable (SOCKS5 0x04),
// an unknown or unreachable service to ErrHostUnreachable, a timeout to
// ErrTTLExpired.
func Route(hs *Client, other socks.Dialer) socks.Dialer {
	return socks.DialerFunc(func(ctx context.Context, req socks.Request) (net.Conn, error) {
		if req.IP.IsValid() || !IsAddress(req.Host) {
			return other.DialStream(ctx, req)
		}
		c, err := hs.DialPort(ctx, req.Host, req.Port)
		if err != nil {
			return nil, socksError(ctx, err)
		}
		return c, nil
	})
}

func socksError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %w", socks.ErrTTLExpired, err)
	case errors.Is(err, descriptor.ErrHSAddress), errors.Is(err, descriptor.ErrHSChecksum),
		errors.Is(err, descriptor.ErrHSVersion), errors.Is(err, ErrUnknownService), errors.Is(err, ErrUnreachable):
		return fmt.Errorf("%w: %w", socks.ErrHostUnreachable, err)
	}
	return err
}
