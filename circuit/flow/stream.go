package flow

import (
	"context"
	"errors"
	"io"
	"sync"
)

// Stream buffer marks, in bytes.
const (
	XoffAbove = 1 << 20  // a receive buffer above this asks the sender to stop
	XonBelow  = 64 << 10 // and below this, after an XOFF, to go on
	HardLimit = 4 << 20  // a sender that ignores XOFF this far loses the stream
)

// Signal is what a stream receiver must tell the sender.
type Signal uint8

// Signals.
const (
	SignalNone Signal = iota
	SignalXoff
	SignalXon
)

// ErrBufferOverrun means the sender kept sending far past an XOFF.
var ErrBufferOverrun = errors.New("flow: stream sender ignored XOFF")

// StreamBuffer holds a stream's received data until the application reads
// it. It is safe for one pusher and one reader.
type StreamBuffer struct {
	// Release, if set, is given every pushed chunk once it has been read
	// in full or dropped, so the pusher can reuse its buffers.
	Release func([]byte)

	mu       sync.Mutex // guards the fields below
	chunks   []chunk
	n        int
	xoff     bool
	err      error // io.EOF after the sender's END, or why the stream died
	readable chan struct{}
}

// NewStreamBuffer returns an empty buffer.
func NewStreamBuffer() *StreamBuffer { return &StreamBuffer{readable: make(chan struct{}, 1)} }

// Push appends data the sender sent (the buffer keeps p) and says whether
// to send XOFF.
func (b *StreamBuffer) Push(p []byte) (Signal, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		b.release(p)
		return SignalNone, nil // late data after END or close is dropped
	}
	if b.n+len(p) > HardLimit {
		b.release(p)
		return SignalNone, ErrBufferOverrun
	}
	b.chunks = append(b.chunks, chunk{b: p})
	b.n += len(p)
	b.notify()
	if !b.xoff && b.n > XoffAbove {
		b.xoff = true
		return SignalXoff, nil
	}
	return SignalNone, nil
}

// chunk is a pushed buffer and how much of it has been read.
type chunk struct {
	b   []byte
	off int
}

func (b *StreamBuffer) release(p []byte) {
	if b.Release != nil {
		b.Release(p)
	}
}

func (b *StreamBuffer) notify() {
	select {
	case b.readable <- struct{}{}:
	default:
	}
}

// CloseWrite ends the data: readers get err (io.EOF for a clean end)
// after the buffered bytes.
func (b *StreamBuffer) CloseWrite(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
	if err != io.EOF { // nobody will read what is left
		for _, c := range b.chunks {
			b.release(c.b)
		}
		b.chunks, b.n = nil, 0
	}
	b.notify()
}

// Read copies buffered data into p, waiting for some if there is none. It
// says whether to send XON.
func (b *StreamBuffer) Read(ctx context.Context, p []byte) (int, Signal, error) {
	for {
		b.mu.Lock()
		if b.n > 0 {
			n := b.take(p)
			sig := SignalNone
			if b.xoff && b.n < XonBelow {
				b.xoff = false
				sig = SignalXon
			}
			if b.n > 0 || b.err != nil {
				b.notify()
			}
			b.mu.Unlock()
			return n, sig, nil
		}
		if err := b.err; err != nil {
			b.notify()
			b.mu.Unlock()
			return 0, SignalNone, err
		}
		b.mu.Unlock()
		select {
		case <-b.readable:
		case <-ctx.Done():
			return 0, SignalNone, ctx.Err()
		}
	}
}

func (b *StreamBuffer) take(p []byte) int {
	n := 0
	for n < len(p) && len(b.chunks) > 0 {
		head := &b.chunks[0]
		c := copy(p[n:], head.b[head.off:])
		n += c
		head.off += c
		if head.off == len(head.b) {
			b.release(head.b)
			b.chunks[0] = chunk{}
			b.chunks = b.chunks[1:]
		}
	}
	b.n -= n
	if len(b.chunks) == 0 {
		b.chunks = nil
	}
	return n
}

// Buffered is the number of bytes waiting to be read.
func (b *StreamBuffer) Buffered() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// Gate is a stream sender's view of XON/XOFF.
type Gate struct {
	mu   sync.Mutex
	off  bool
	err  error
	wake chan struct{}
}

// NewGate returns an open gate.
func NewGate() *Gate { return &Gate{wake: make(chan struct{})} }

// Set closes the gate (XOFF) or opens it (XON).
func (g *Gate) Set(off bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.off && !off {
		close(g.wake)
		g.wake = make(chan struct{})
	}
	g.off = off
}

// Close fails every Wait with err.
func (g *Gate) Close(err error) {
	if err == nil {
		err = io.ErrClosedPipe
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = err
		close(g.wake)
		g.wake = make(chan struct{})
	}
}

// Wait returns once the gate is open.
func (g *Gate) Wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		if g.err != nil {
			g.mu.Unlock()
			return g.err
		}
		if !g.off {
			g.mu.Unlock()
			return nil
		}
		w := g.wake
		g.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// chunkSize fits the body of any relay cell.
const chunkSize = 1280

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// CopyChunk copies p (at most one cell body) into a pooled buffer, for a
// StreamBuffer whose Release is ReleaseChunk: a stream moves every byte
// through these, so they are reused rather than allocated per cell.
func CopyChunk(p []byte) []byte {
	if len(p) > chunkSize {
		return append([]byte(nil), p...)
	}
	b := (*chunkPool.Get().(*[]byte))[:len(p)]
	copy(b, p)
	return b
}

// ReleaseChunk returns a buffer from CopyChunk to the pool.
func ReleaseChunk(b []byte) {
	if cap(b) == chunkSize {
		b = b[:chunkSize]
		chunkPool.Put(&b)
	}
}
