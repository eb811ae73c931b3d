package client

import (
	"context"
	"net"
	"os"
	"sync"
	"time"
)

// optimisticWait is how long a stream that needs a new circuit waits for
// the application's first bytes before its build starts without them. An
// application that writes first (HTTP, TLS) writes within a fraction of
// a millisecond of being connected, and its bytes then ride in the
// build's flight instead of waiting a round trip for CREATED; one that
// waits for the server to speak first (SSH, SMTP) loses at most this.
const optimisticWait = 10 * time.Millisecond

// lazyStream is a connection whose stream is opened by its first write,
// which then carries the first bytes, or after optimisticWait without
// them, whichever comes first. Reads wait for the stream.
//
//	waiting ──(first Write: data)──┐
//	   │ (optimisticWait, CloseWrite)├─► dialling ──► open (s) or failed (err)
//	   └────────────────────────────┘
//	waiting ──(Close)──► failed (net.ErrClosed)
type lazyStream struct {
	m    *CircuitManager
	key  IsolationKey
	host string
	port uint16

	ctx    context.Context // the dial's: Dial's deadline, cancelled by Close
	cancel context.CancelFunc

	tm    sync.Mutex  // guards timer, which may fire before it is stored
	timer *time.Timer // begins the stream if nothing is written first

	once sync.Once
	done chan struct{} // closed once s or err is set
	s    *Stream
	err  error

	dl     sync.Mutex // guards the deadlines and open
	rd, wd time.Time
	open   *Stream // s, for SetDeadline, once it exists
}

func newLazyStream(ctx context.Context, m *CircuitManager, key IsolationKey, host string, port uint16) *lazyStream {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if d, ok := ctx.Deadline(); ok {
		dctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), d)
	}
	l := &lazyStream{m: m, key: key, host: host, port: port, ctx: dctx, cancel: cancel, done: make(chan struct{})}
	l.tm.Lock()
	l.timer = time.AfterFunc(optimisticWait, func() { l.begin(nil) })
	l.tm.Unlock()
	return l
}

// begin opens the stream with data as its first bytes, unless it is
// already open or opening; it reports whether this call opened it.
func (l *lazyStream) begin(data []byte) bool {
	ran := false
	l.once.Do(func() {
		ran = true
		l.tm.Lock()
		l.timer.Stop()
		l.tm.Unlock()
		c, err := l.m.dial(l.ctx, l.key, l.host, l.port, &firstStream{data: data, optimistic: true})
		if err != nil {
			l.err = err
		} else {
			l.s = c.(*Stream)
			l.dl.Lock()
			l.open = l.s
			l.s.SetReadDeadline(l.rd)
			l.s.SetWriteDeadline(l.wd)
			l.dl.Unlock()
		}
		close(l.done)
	})
	return ran
}

// stream waits for the stream until deadline (zero: no deadline).
func (l *lazyStream) stream(deadline time.Time) (*Stream, error) {
	if deadline.IsZero() {
		<-l.done
		return l.s, l.err
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-l.done:
		return l.s, l.err
	case <-t.C:
		return nil, os.ErrDeadlineExceeded
	}
}

// Write sends p; the first write opens the stream with p's first
// MaxEarlyData bytes in the build's flight.
func (l *lazyStream) Write(p []byte) (int, error) {
	first := p[:min(len(p), MaxEarlyData)]
	if len(p) > 0 && l.begin(first) {
		if l.err != nil {
			return 0, l.err
		}
		if len(first) == len(p) {
			return len(p), nil
		}
		n, err := l.s.Write(p[len(first):])
		return len(first) + n, err
	}
	s, err := l.stream(l.deadlines(false))
	if err != nil {
		return 0, err
	}
	return s.Write(p)
}

// Read reads what the destination sent, once the stream is open.
func (l *lazyStream) Read(p []byte) (int, error) {
	s, err := l.stream(l.deadlines(true))
	if err != nil {
		return 0, err
	}
	return s.Read(p)
}

// CloseWrite opens the stream if it is not yet open, then half-closes it.
func (l *lazyStream) CloseWrite() error {
	l.begin(nil)
	if l.err != nil {
		return l.err
	}
	return l.s.CloseWrite()
}

// Close ends the stream, or stops it from opening.
func (l *lazyStream) Close() error {
	l.cancel()
	l.tm.Lock()
	l.timer.Stop()
	l.tm.Unlock()
	l.once.Do(func() {
		l.err = net.ErrClosed
		close(l.done)
	})
	if l.s != nil {
		return l.s.Close()
	}
	return nil
}

func (l *lazyStream) deadlines(read bool) time.Time {
	l.dl.Lock()
	defer l.dl.Unlock()
	if read {
		return l.rd
	}
	return l.wd
}

// SetDeadline sets both deadlines.
func (l *lazyStream) SetDeadline(t time.Time) error {
	l.SetReadDeadline(t)
	return l.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline.
func (l *lazyStream) SetReadDeadline(t time.Time) error {
	l.dl.Lock()
	defer l.dl.Unlock()
	l.rd = t
	if l.open != nil {
		l.open.SetReadDeadline(t)
	}
	return nil
}

// SetWriteDeadline sets the write deadline.
func (l *lazyStream) SetWriteDeadline(t time.Time) error {
	l.dl.Lock()
	defer l.dl.Unlock()
	l.wd = t
	if l.open != nil {
		l.open.SetWriteDeadline(t)
	}
	return nil
}

// LocalAddr is a placeholder, as a Stream's.
func (l *lazyStream) LocalAddr() net.Addr { return streamAddr("client") }

// RemoteAddr is a placeholder until the stream is open.
func (l *lazyStream) RemoteAddr() net.Addr {
	l.dl.Lock()
	defer l.dl.Unlock()
	if l.open != nil {
		return l.open.RemoteAddr()
	}
	return streamAddr("stream")
}
