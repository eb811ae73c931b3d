package socks

import (
	"context"
	"io"
	"net"
	"sync"
)

// relay copies both ways between the client and the stream until both
// directions have ended. An EOF from one side is passed on as a half-close
// where the other side supports it; an error, or ctx ending, closes both.
// A stream that fails — refused by the exit after an optimistic reply,
// or reset — resets the client's connection, so that the application
// cannot take the failure for an empty answer.
// clientR is the client connection's reader, holding any bytes the client
// sent after its request (optimistic data). relay returns the stream's
// failure, if it failed.
func relay(ctx context.Context, client net.Conn, clientR io.Reader, stream net.Conn) error {
	closeBoth := sync.OnceFunc(func() {
		client.Close()
		stream.Close()
	})
	defer closeBoth()
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		if pipe(stream, clientR, closeBoth) != nil {
			// Close the stream only: the other direction then reads the
			// stream's failure and resets the client. Closing the client
			// here would race that reset with a plain close, which the
			// application takes for an empty answer.
			stream.Close()
		}
	})
	err := pipe(client, stream, closeBoth)
	if err != nil {
		reset(client)
		closeBoth()
	}
	wg.Wait()
	return err
}

// pipe copies src to dst, then half-closes dst where it can (a dst that
// cannot stays open until the other direction ends). It returns the
// copy's error, after which the caller closes everything.
func pipe(dst net.Conn, src io.Reader, closeBoth func()) error {
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() != nil {
		closeBoth()
	}
	return nil
}

// reset makes the coming close of a TCP connection a reset (RST).
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}
