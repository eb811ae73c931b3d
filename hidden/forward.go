package hidden

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
)

// Forward serves l until ctx ends or l closes: each connection is joined
// to the local target its virtual port maps to (e.g. 80 →
// "127.0.0.1:8080"); a port without a target is refused by closing the
// stream. It returns once every forwarded connection has ended.
func Forward(ctx context.Context, l net.Listener, targets map[uint16]string) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		hc, ok := c.(*Conn)
		target, mapped := "", false
		if ok {
			target, mapped = targets[hc.VirtualPort()]
		}
		if !mapped {
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			forward(ctx, c, target)
		}()
	}
}

func forward(ctx context.Context, c net.Conn, target string) {
	defer c.Close()
	var d net.Dialer
	t, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return
	}
	defer t.Close()
	stop := context.AfterFunc(ctx, func() { c.Close(); t.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		io.Copy(t, c)
		closeWrite(t)
		close(done)
	}()
	io.Copy(c, t)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
