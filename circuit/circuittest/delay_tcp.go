package circuittest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DelayTCP is a TCP forwarder on 127.0.0.1 that adds a one-way delay to
// every chunk in each direction, in order, optionally under a bandwidth
// limit. Each accepted connection gets its own connection to the target.
// It starts forwarding when created; Close stops it and waits for its
// goroutines.
type DelayTCP struct {
	target string
	delay  time.Duration
	cfg    delayConfig
	ln     net.Listener
	stats  delayCounters
	wg     sync.WaitGroup

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool

	closeOnce sync.Once
	ctx       context.Context // cancelled by Close, ends pending dials
	cancel    context.CancelFunc
}

// NewDelayTCP listens on 127.0.0.1:0 and forwards to target ("host:port")
// with oneWay delay in each direction, so a round trip through it takes at
// least 2×oneWay.
func NewDelayTCP(target string, oneWay time.Duration, opts ...DelayOption) (*DelayTCP, error) {
	if oneWay < 0 {
		return nil, errors.New("circuittest: negative delay")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("circuittest: delay forwarder: %w", err)
	}
	d := &DelayTCP{
		target: target, delay: oneWay, cfg: newDelayConfig(opts), ln: ln,
		conns: map[net.Conn]struct{}{},
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Go(d.accept)
	return d, nil
}

// Addr is the address clients connect to.
func (d *DelayTCP) Addr() net.Addr { return d.ln.Addr() }

// AddrPort is Addr as a netip.AddrPort.
func (d *DelayTCP) AddrPort() netip.AddrPort { return d.ln.Addr().(*net.TCPAddr).AddrPort() }

// Stats reports chunks forwarded so far.
func (d *DelayTCP) Stats() DelayStats { return d.stats.stats() }

// Close stops listening, closes every forwarded connection and waits for
// the forwarder's goroutines. It is idempotent.
func (d *DelayTCP) Close() error {
	d.closeOnce.Do(func() {
		d.cancel()
		d.ln.Close()
		d.mu.Lock()
		d.closed = true
		for c := range d.conns {
			c.Close()
		}
		d.mu.Unlock()
	})
	d.wg.Wait()
	return nil
}

func (d *DelayTCP) accept() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.wg.Go(func() { d.forward(c) })
	}
}

// track registers a connection for Close; false if already closed.
func (d *DelayTCP) track(c net.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.conns[c] = struct{}{}
	return true
}

func (d *DelayTCP) untrack(c net.Conn) {
	d.mu.Lock()
	delete(d.conns, c)
	d.mu.Unlock()
}

// forward relays one client connection to a fresh target connection.
func (d *DelayTCP) forward(client net.Conn) {
	defer client.Close()
	if !d.track(client) {
		return
	}
	defer d.untrack(client)
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	var nd net.Dialer
	up, err := nd.DialContext(ctx, "tcp", d.target)
	cancel()
	if err != nil {
		return
	}
	defer up.Close()
	if !d.track(up) {
		return
	}
	defer d.untrack(up)
	d.pair(client, up)
}

// pair runs both directions until both ended; a failure in one closes
// everything.
func (d *DelayTCP) pair(a, b net.Conn) {
	stop := make(chan struct{})
	var once sync.Once
	abort := func() {
		once.Do(func() {
			close(stop)
			a.Close()
			b.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.direction(a, b, stop, abort) })
	wg.Go(func() { d.direction(b, a, stop, abort) })
	wg.Wait()
	abort()
}

// direction moves src's bytes to dst through a delay line, ending with a
// delayed half-close.
func (d *DelayTCP) direction(src, dst net.Conn, stop chan struct{}, abort func()) {
	line := newDelayLine(d.delay, d.cfg, 0, &d.stats, stop)
	var wg sync.WaitGroup
	wg.Go(func() {
		line.run(func(batch []item) error {
			err := writeChunks(dst, batch)
			if err != nil {
				abort()
			}
			return err
		})
	})
	d.read(src, line, abort)
	wg.Wait()
}

// read feeds src into line until EOF (pushed as a marker) or an error.
func (d *DelayTCP) read(src net.Conn, line *delayLine, abort func()) {
	buf := make([]byte, tcpChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 && !line.push(append([]byte(nil), buf[:n]...), false) {
			return
		}
		if errors.Is(err, io.EOF) {
			line.push(nil, true)
			return
		}
		if err != nil {
			abort()
			return
		}
	}
}

// writeChunks writes a batch with one writev, then half-closes dst if the
// batch ends with the EOF marker.
func writeChunks(dst net.Conn, batch []item) error {
	bufs := make(net.Buffers, 0, len(batch))
	eof := false
	for _, it := range batch {
		if it.eof {
			eof = true
			continue
		}
		bufs = append(bufs, it.b)
	}
	if _, err := bufs.WriteTo(dst); err != nil {
		return err
	}
	if eof {
		return closeWrite(dst)
	}
	return nil
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
