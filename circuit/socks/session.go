package socks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/obolnet/obol/circuit/errkind"
)

// session is one client connection: a handshake in one of the protocols,
// a dial, a reply, then relaying.
type session struct {
	s    *Server
	conn net.Conn
	br   *bufio.Reader // holds bytes the client sent after its request
}

// serveConn runs a client connection to its end. Cancelling ctx closes it.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	ss := &session{s: s, conn: conn, br: bufio.NewReaderSize(conn, 4096)}
	conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	first, err := ss.br.Peek(1)
	if err != nil {
		return
	}
	var proto Protocol
	switch {
	case first[0] == version5:
		proto, err = ss.socks5(ctx)
	case first[0] == version4 && !s.cfg.DisableSOCKS4:
		proto, err = ss.socks4(ctx)
	case first[0] >= 'A' && first[0] <= 'Z' && !s.cfg.DisableHTTPConnect:
		proto, err = ss.httpConnect(ctx)
	default:
		err = fmt.Errorf("%w: unknown protocol byte %#x", ErrMalformed, first[0])
	}
	s.cfg.Logger.Debug("socks: session ended", "proto", proto.String(), "err", redact(err))
}

// dial asks the Dialer for req's stream within the dial timeout. The
// handshake deadline is lifted meanwhile and restored for the reply.
func (ss *session) dial(ctx context.Context, req Request) (net.Conn, error) {
	ss.conn.SetDeadline(time.Time{})
	defer ss.conn.SetDeadline(time.Now().Add(ss.s.cfg.HandshakeTimeout))
	ctx, cancel := context.WithTimeout(ctx, ss.s.cfg.DialTimeout)
	defer cancel()
	req.Optimistic = !ss.s.cfg.DisableOptimisticData
	stream, err := ss.s.cfg.Dialer.DialStream(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("socks: dial: %w", err)
	}
	return stream, nil
}

// writeReply sends a handshake reply.
func (ss *session) writeReply(b []byte) error {
	if _, err := ss.conn.Write(b); err != nil {
		return fmt.Errorf("socks: write reply: %w", err)
	}
	return nil
}

// finish relays between the client and stream once the success reply has
// been sent; a failed reply write closes the stream.
func (ss *session) finish(ctx context.Context, stream net.Conn, replyErr error) error {
	if replyErr != nil {
		stream.Close()
		return replyErr
	}
	ss.conn.SetDeadline(time.Time{})
	if err := relay(ctx, ss.conn, ss.br, stream); err != nil && ctx.Err() == nil {
		ss.s.cfg.Logger.Debug("socks: relaying failed; connection reset", "kind", errkind.Of(err).String())
	}
	return nil
}

// redact keeps only an error's category for logs: error strings from
// dialers and parsers may carry destinations.
func redact(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	}
	return fmt.Sprintf("reply %#02x", ReplyCode5(err))
}
