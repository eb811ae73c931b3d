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
// clientR is the client connection's reader, holding any bytes the client
// sent after its request (optimistic data).
func relay(ctx context.Context, client net.Conn, clientR io.Reader, stream net.Conn) {
	closeBoth := sync.OnceFunc(func() {
		client.Close()
		stream.Close()
	})
	defer closeBoth()
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { pipe(stream, clientR, closeBoth) })
	pipe(client, stream, closeBoth)
	wg.Wait()
}

// pipe copies src to dst, then half-closes dst where it can (a dst that
// cannot stays open until the other direction ends), or closes everything
// if the copy failed.
func pipe(dst net.Conn, src io.Reader, closeBoth func()) {
	if _, err := io.Copy(dst, src); err != nil {
		closeBoth()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() != nil {
		closeBoth()
	}
}
