package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/errkind"
	"github.com/obolnet/obol/circuit/flow"
	"github.com/obolnet/obol/descriptor"
)

// EndError is a stream ended by the exit with a reason other than a
// clean end: a refused connect, an exit-policy refusal, a reset.
type EndError struct{ Reason circuit.EndReason }

func (e *EndError) Error() string { return "client: stream ended by exit: " + e.Reason.String() }

// ErrorKind is the kind of the reason (errkind.Refused for a refused
// connect, ...), so that errkind.Of tells the caller what to do.
func (e *EndError) ErrorKind() errkind.Kind { return endKind(e.Reason) }

// Stream is a TCP stream through a circuit. It is a net.Conn; CloseWrite
// half-closes it.
type Stream struct {
	c      *Circuit
	id     uint16
	buf    *flow.StreamBuffer
	gate   *flow.Gate
	reply  chan error // the answer to BEGIN or RESOLVE
	answer circuit.Resolved

	dl sync.Mutex // guards the deadlines
	rd time.Time
	wd time.Time

	am       sync.Mutex // guards the answer's outcome and its watcher
	outcome  answer
	onAnswer func(answered bool)

	// guarded by the circuit's mu
	remoteIP netip.Addr
	sentEnd  bool
	gotEnd   bool
	isOpen   bool
}

// Dial opens a stream to host:port at the circuit's last hop, which
// resolves host itself; the client never does. It returns once the exit
// has connected, or with an *EndError saying why not. A hidden-service
// name is refused with ErrHSName and never sent.
func (c *Circuit) Dial(ctx context.Context, host string, port uint16) (*Stream, error) {
	body, err := beginBody(host, port)
	if err != nil {
		return nil, err
	}
	s, err := c.newStream(ctx, circuit.RelayBegin, body)
	if err != nil {
		return nil, err
	}
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// DialOptimistic opens a stream to host:port like Dial but returns as
// soon as the BEGIN is sent, without waiting for CONNECTED: data written
// at once follows the BEGIN in the same flight and the exit holds it until
// it has connected (optimistic data, 04 §16). If the exit refuses the
// stream, reads and writes fail with an *EndError saying why.
func (c *Circuit) DialOptimistic(ctx context.Context, host string, port uint16) (*Stream, error) {
	body, err := beginBody(host, port)
	if err != nil {
		return nil, err
	}
	return c.newStream(ctx, circuit.RelayBegin, body)
}

// Resolve asks the exit for host's addresses. A hidden-service name is
// refused with ErrHSName and never sent.
func (c *Circuit) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if err := checkExitHost(host); err != nil {
		return nil, err
	}
	body, err := circuit.Resolve{Host: host}.MarshalBinary()
	if err != nil {
		return nil, err
	}
	s, err := c.newStream(ctx, circuit.RelayResolve, body)
	if err != nil {
		return nil, err
	}
	defer c.forget(s)
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	if s.answer.Status != circuit.ResolveOK {
		return nil, &EndError{Reason: circuit.EndResolveFailed}
	}
	out := make([]netip.Addr, len(s.answer.Answers))
	for i, a := range s.answer.Answers {
		out[i] = a.IP
	}
	return out, nil
}

// ErrHSName means a stream or resolve named a hidden service (a name
// ending in .obol, in any case, with or without trailing dots): an exit
// would hand it to public DNS, so it is never sent to one. Reach the
// service through the hidden-service client (hidden.Connector) instead.
var ErrHSName = errkind.New(errkind.NotAllowed, "client: a .obol name is a hidden service and is never sent to an exit")

// checkExitHost refuses the names that must not reach an exit. Every BEGIN
// and RESOLVE the client sends passes here.
func checkExitHost(host string) error {
	if descriptor.IsHSHost(host) {
		return ErrHSName
	}
	return nil
}

// beginBody is the body of a BEGIN to host:port; a hidden-service name
// is refused with ErrHSName.
func beginBody(host string, port uint16) ([]byte, error) {
	if err := checkExitHost(host); err != nil {
		return nil, err
	}
	a := circuit.Address{Host: host}
	if ip, err := netip.ParseAddr(host); err == nil {
		a = circuit.Address{IP: ip.Unmap()}
	}
	return circuit.Begin{Addr: a, Port: port, Flags: circuit.BeginIPv6OK}.MarshalBinary()
}

// newStream registers a stream and sends its first cell.
func (c *Circuit) newStream(ctx context.Context, cmd circuit.RelayCommand, body []byte) (*Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	id, ok := c.freeStreamID()
	if !ok {
		return nil, ErrTooManyStream
	}
	s := newStream(c, id)
	c.streams[id] = s
	if err := c.sealLocked(ctx, c.exit(), circuit.RelayCell{Command: cmd, StreamID: id, Body: body}); err != nil {
		delete(c.streams, id)
		return nil, err
	}
	return s, nil
}

func newStream(c *Circuit, id uint16) *Stream {
	buf := flow.NewStreamBuffer()
	buf.Release = flow.ReleaseChunk
	return &Stream{c: c, id: id, buf: buf, gate: flow.NewGate(), reply: make(chan error, 1)}
}

func (c *Circuit) freeStreamID() (uint16, bool) {
	for range 1 << 16 {
		id := c.nextID
		c.nextID++
		if _, used := c.streams[id]; id != 0 && !used {
			return id, true
		}
	}
	return 0, false
}

func (s *Stream) wait(ctx context.Context) error {
	select {
	case err := <-s.reply:
		if err != nil {
			s.c.forget(s)
		}
		return err
	case <-ctx.Done():
		s.abort(circuit.EndTimeout)
		return ctx.Err()
	}
}

// connected handles CONNECTED. The circuit's mu is held.
func (s *Stream) connected(body []byte) {
	m, err := circuit.ParseConnected(body)
	if err == nil {
		s.remoteIP = m.IP
	}
	s.isOpen = true
	s.settle(answerGiven)
	s.reply <- nil
}

// answer is what became of a BEGIN: no answer yet, an answer from the exit
// (CONNECTED, or END refusing the stream), or none because the circuit
// died first.
type answer uint8

const (
	answerPending answer = iota
	answerGiven
	answerLost
)

// settle records the BEGIN's outcome once and tells the watcher, if any.
func (s *Stream) settle(a answer) {
	s.am.Lock()
	if s.outcome != answerPending {
		s.am.Unlock()
		return
	}
	s.outcome = a
	f := s.onAnswer
	s.am.Unlock()
	if f != nil {
		go f(a == answerGiven)
	}
}

// watchAnswer calls f once the exit has answered the BEGIN (true) or the
// circuit died before it did (false); at once if that is already known.
// A stream closed locally before an answer never calls f.
func (s *Stream) watchAnswer(f func(answered bool)) {
	s.am.Lock()
	a := s.outcome
	if a == answerPending {
		s.onAnswer = f
	}
	s.am.Unlock()
	if a != answerPending {
		go f(a == answerGiven)
	}
}

// resolved handles RESOLVED. The circuit's mu is held.
func (s *Stream) resolved(body []byte) {
	m, err := circuit.ParseResolved(body)
	if err != nil {
		m = circuit.Resolved{Status: circuit.ResolveFailed}
	}
	s.answer = m
	s.reply <- nil
}

// remoteEnd handles END from the exit. mu is held.
func (c *Circuit) remoteEnd(s *Stream, body []byte) {
	e, err := circuit.ParseEnd(body)
	if err != nil {
		e.Reason = circuit.EndProtocol
	}
	switch {
	case !s.isOpen:
		// Refused: a Dial waiting for the answer, or the reads and writes
		// of an optimistic stream, learn why.
		s.settle(answerGiven)
		delete(c.streams, s.id)
		s.closeRemote(&EndError{Reason: e.Reason})
	case e.Reason == circuit.EndDone:
		s.gotEnd = true
		s.buf.CloseWrite(io.EOF)
		if s.sentEnd {
			delete(c.streams, s.id)
		}
	default:
		delete(c.streams, s.id)
		s.closeRemote(&EndError{Reason: e.Reason})
	}
}

// closeRemote fails the stream's reads, writes and waiters with err.
func (s *Stream) closeRemote(err error) {
	s.buf.CloseWrite(err)
	s.gate.Close(err)
	select {
	case s.reply <- err:
	default:
	}
}

// abortLocked ends a stream both ways. mu is held.
func (c *Circuit) abortLocked(s *Stream, why circuit.EndReason) {
	if !s.sentEnd {
		s.sentEnd = true
		b, _ := circuit.End{Reason: why}.MarshalBinary()
		c.sealLocked(context.Background(), c.exit(), circuit.RelayCell{Command: circuit.RelayEnd, StreamID: s.id, Body: b})
	}
	delete(c.streams, s.id)
	s.closeRemote(net.ErrClosed)
}

func (s *Stream) abort(why circuit.EndReason) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.c.streams[s.id] == s {
		s.c.abortLocked(s, why)
	}
}

func (c *Circuit) forget(s *Stream) {
	c.mu.Lock()
	if c.streams[s.id] == s {
		delete(c.streams, s.id)
	}
	c.mu.Unlock()
}

// Read reads data the destination sent.
func (s *Stream) Read(p []byte) (int, error) {
	ctx, cancel := s.ctx(s.readDeadline())
	defer cancel()
	n, sig, err := s.buf.Read(ctx, p)
	if sig == flow.SignalXon {
		s.c.mu.Lock()
		if s.c.streams[s.id] == s {
			s.c.sealLocked(context.Background(), s.c.exit(), circuit.RelayCell{Command: circuit.RelayXon, StreamID: s.id})
		}
		s.c.mu.Unlock()
	}
	return n, s.ioErr(err)
}

// Write sends p to the destination, within the circuit's congestion
// window and the stream's XON/XOFF.
func (s *Stream) Write(p []byte) (int, error) {
	ctx, cancel := s.ctx(s.writeDeadline())
	defer cancel()
	n := 0
	for n < len(p) {
		chunk := p[n:min(len(p), n+circuit.MaxRelayBody)]
		if err := s.gate.Wait(ctx); err != nil {
			return n, s.ioErr(err)
		}
		if err := s.c.send.Acquire(ctx); err != nil {
			return n, s.ioErr(err)
		}
		s.c.mu.Lock()
		err := s.writeLocked(ctx, chunk)
		s.c.mu.Unlock()
		if err != nil {
			s.c.send.Release() // the cell was not sent
			return n, s.ioErr(err)
		}
		n += len(chunk)
	}
	return n, nil
}

func (s *Stream) writeLocked(ctx context.Context, chunk []byte) error {
	if s.sentEnd || s.c.streams[s.id] != s {
		return net.ErrClosed
	}
	tag, err := s.c.sealTagLocked(ctx, s.c.exit(), circuit.RelayCell{Command: circuit.RelayData, StreamID: s.id, Body: chunk})
	if err == nil {
		s.c.send.Sealed(tag, time.Now())
	}
	return err
}

// ioErr turns internal errors into what net.Conn users expect, each with
// a kind: a deadline is a timeout, a stream closed here is closed, an
// exit's END has its reason's kind, and a circuit lost under the stream
// (destroyed by a relay, its link gone, closed here) asks for another
// path: a new Dial meets the manager's own state first.
func (s *Stream) ioErr(err error) error {
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return os.ErrDeadlineExceeded
	case errkind.Of(err) == errkind.Unknown:
		return errkind.Wrap(errkind.OtherPath, err)
	}
	return err
}

// CloseWrite half-closes the stream: the destination reads EOF.
func (s *Stream) CloseWrite() error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.sentEnd {
		return nil
	}
	s.sentEnd = true
	b, _ := circuit.End{Reason: circuit.EndDone}.MarshalBinary()
	err := s.c.sealLocked(context.Background(), s.c.exit(), circuit.RelayCell{Command: circuit.RelayEnd, StreamID: s.id, Body: b})
	if s.gotEnd {
		delete(s.c.streams, s.id)
	}
	return err
}

// Close ends the stream. If the destination is still sending, the exit is
// told to drop the connection.
func (s *Stream) Close() error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.c.streams[s.id] != s {
		s.closeRemote(net.ErrClosed)
		return nil
	}
	why := circuit.EndMisc
	if s.gotEnd {
		why = circuit.EndDone
	}
	s.c.abortLocked(s, why)
	return nil
}

func (s *Stream) ctx(deadline time.Time) (context.Context, context.CancelFunc) {
	if deadline.IsZero() {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadline(context.Background(), deadline)
}

func (s *Stream) readDeadline() time.Time {
	s.dl.Lock()
	defer s.dl.Unlock()
	return s.rd
}

func (s *Stream) writeDeadline() time.Time {
	s.dl.Lock()
	defer s.dl.Unlock()
	return s.wd
}

// SetDeadline sets both deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	s.dl.Lock()
	s.rd, s.wd = t, t
	s.dl.Unlock()
	return nil
}

// SetReadDeadline sets the read deadline.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.dl.Lock()
	s.rd = t
	s.dl.Unlock()
	return nil
}

// SetWriteDeadline sets the write deadline.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.dl.Lock()
	s.wd = t
	s.dl.Unlock()
	return nil
}

// streamAddr names a stream's ends without revealing anything.
type streamAddr string

func (a streamAddr) Network() string { return "obol" }
func (a streamAddr) String() string  { return string(a) }

// LocalAddr is a placeholder: the client has no address on the stream.
func (s *Stream) LocalAddr() net.Addr { return streamAddr("client") }

// RemoteAddr is the stream's number on its circuit.
func (s *Stream) RemoteAddr() net.Addr { return streamAddr(fmt.Sprintf("stream-%d", s.id)) }
