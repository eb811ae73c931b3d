package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/flow"
)

// exitSide is the exit end of a circuit: its streams and the circuit-level
// flow control of data toward the client. It is guarded by its hop's mu.
type exitSide struct {
	h       *hop
	streams map[uint16]*exitStream
	send    *flow.Sender  // exit → client DATA
	recv    flow.Receiver // client → exit DATA
	ctx     context.Context
	cancel  context.CancelFunc
}

func (h *hop) exitSide() *exitSide {
	if h.exit == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h.exit = &exitSide{h: h, streams: map[uint16]*exitStream{}, send: flow.NewSender(), ctx: ctx, cancel: cancel}
	}
	return h.exit
}

// onSendme: the client acknowledged a window of our DATA cells.
func (x *exitSide) onSendme(body []byte) error {
	m, err := circuit.ParseSendme(body)
	if err != nil {
		return err
	}
	return x.send.OnSendme(time.Now(), flow.Tag(m.Tag))
}

// handle processes a stream cell addressed to this (exit) hop.
func (x *exitSide) handle(rc circuit.RelayCell) error {
	switch rc.Command {
	case circuit.RelayBegin:
		return x.begin(rc.StreamID, rc.Body)
	case circuit.RelayResolve:
		return x.resolve(rc.StreamID, rc.Body)
	case circuit.RelayData:
		if err := x.countData(rc); err != nil {
			return err
		}
	}
	s := x.streams[rc.StreamID]
	if s == nil {
		return nil // the stream ended while the cell was on its way
	}
	switch rc.Command {
	case circuit.RelayData:
		return x.data(s, rc.Body)
	case circuit.RelayEnd:
		s.remoteEnd(rc.Body)
	case circuit.RelayXoff:
		s.gate.Set(true)
	case circuit.RelayXon:
		s.gate.Set(false)
	case circuit.RelaySendme:
		return errors.New("router: stream-level SENDME is not used")
	}
	return nil
}

// countData counts a DATA cell for circuit-level flow control, whichever
// stream it is for (or none: the sender counted it too), and answers each
// completed window with a SENDME echoing the tag of its last cell.
func (x *exitSide) countData(rc circuit.RelayCell) error {
	tag, due := x.recv.OnData(flow.Tag(rc.Tag))
	if !due {
		return nil
	}
	b, _ := circuit.Sendme{Tag: tag}.MarshalBinary()
	return x.h.originate(circuit.RelayCell{Command: circuit.RelaySendme, Body: b})
}

func (x *exitSide) data(s *exitStream, body []byte) error {
	s.lastActive = time.Now().UnixNano()
	sig, err := s.buf.Push(flow.CopyChunk(body))
	if err != nil {
		s.abort(circuit.EndProtocol)
		return nil
	}
	if sig == flow.SignalXoff {
		return x.h.originate(circuit.RelayCell{Command: circuit.RelayXoff, StreamID: s.id})
	}
	return nil
}

// begin opens a stream: resolve and check the destination, then connect,
// in a goroutine of the stream's own so the circuit goes on meanwhile.
func (x *exitSide) begin(id uint16, body []byte) error {
	if _, dup := x.streams[id]; dup {
		return fmt.Errorf("router: stream %d already open", id)
	}
	b, err := circuit.ParseBegin(body)
	if err != nil {
		return err
	}
	if x.h.r.cfg.Exit == nil {
		return x.h.originate(endCell(id, circuit.EndExitPolicy))
	}
	if len(x.streams) >= x.h.r.cfg.MaxStreams || x.h.r.streams.Load() >= int64(x.h.r.cfg.MaxExitStreams) {
		x.h.r.refusedStreams.Add(1)
		return x.h.originate(endCell(id, circuit.EndResourceLimit))
	}
	s := newExitStream(x, id)
	x.streams[id] = s
	x.h.r.streams.Add(1)
	x.h.r.work.Add(1)
	go func() {
		defer x.h.r.work.Done()
		s.connect(b)
	}()
	return nil
}

func endCell(id uint16, why circuit.EndReason) circuit.RelayCell {
	b, _ := circuit.End{Reason: why}.MarshalBinary()
	return circuit.RelayCell{Command: circuit.RelayEnd, StreamID: id, Body: b}
}

// resolve answers a RESOLVE with the addresses the exit policy accepts.
func (x *exitSide) resolve(id uint16, body []byte) error {
	q, err := circuit.ParseResolve(body)
	if err != nil {
		return err
	}
	pol := x.h.r.cfg.Exit
	x.h.r.work.Add(1)
	go func() {
		defer x.h.r.work.Done()
		ans := circuit.Resolved{Status: circuit.ResolveFailed}
		if pol != nil {
			ctx, cancel := context.WithTimeout(x.ctx, x.h.r.cfg.ConnectTimeout)
			addrs, err := pol.Resolve(ctx, q.Host)
			cancel()
			ans = resolvedAnswer(pol, addrs, err)
		}
		b, err := ans.MarshalBinary()
		if err != nil {
			return
		}
		x.h.mu.Lock()
		defer x.h.mu.Unlock()
		if !x.h.closed {
			x.h.originate(circuit.RelayCell{Command: circuit.RelayResolved, StreamID: id, Body: b})
		}
	}()
	return nil
}

// resolvedAnswer keeps the addresses the policy accepts for some port.
func resolvedAnswer(pol *ExitPolicy, addrs []netip.Addr, err error) circuit.Resolved {
	if err != nil {
		return circuit.Resolved{Status: circuit.ResolveFailed}
	}
	out := circuit.Resolved{Status: circuit.ResolveOK}
	for _, a := range addrs {
		if pol.Check(netip.AddrPortFrom(a, 443)) == nil || pol.Check(netip.AddrPortFrom(a, 80)) == nil {
			out.Answers = append(out.Answers, circuit.Answer{IP: a, TTL: 60})
		}
		if len(out.Answers) == circuit.MaxResolvedAnswers {
			break
		}
	}
	if len(out.Answers) == 0 {
		out.Status = circuit.ResolveFailed
	}
	return out
}

// close ends every stream (the circuit is going away). mu is held.
func (x *exitSide) close() {
	x.cancel()
	x.send.Close(nil)
	for _, s := range x.streams {
		s.shutdown()
	}
	x.h.r.streams.Add(-int64(len(x.streams))) // they no longer count against MaxExitStreams
	x.streams = map[uint16]*exitStream{}
}

// exitStream is one TCP stream at the exit.
//
// Half-close: END with reason "done" from the client means it sends no
// more; the exit then half-closes the TCP connection once the buffered
// data is written. The stream is gone once both sides have ended.
type exitStream struct {
	x    *exitSide
	id   uint16
	buf  *flow.StreamBuffer // client data waiting to be written
	gate *flow.Gate         // the client's XON/XOFF
	ctx  context.Context
	stop context.CancelFunc

	// guarded by the hop's mu
	conn       net.Conn
	sentEnd    bool
	gotEnd     bool
	lastActive int64 // Unix nanoseconds of the last data either way
}

func newExitStream(x *exitSide, id uint16) *exitStream {
	ctx, stop := context.WithCancel(x.ctx)
	buf := flow.NewStreamBuffer()
	buf.Release = flow.ReleaseChunk
	return &exitStream{x: x, id: id, buf: buf, gate: flow.NewGate(), ctx: ctx, stop: stop,
		lastActive: time.Now().UnixNano()}
}

// reapIdle ends, with reason timeout, the streams that moved no data since
// before (Unix nanoseconds). The hop's mu is held.
func (x *exitSide) reapIdle(before int64) {
	for _, s := range x.streams {
		if s.lastActive < before {
			s.endLocked(circuit.EndTimeout)
		}
	}
}

// connect resolves, checks and dials the destination, then answers the
// client and starts moving data.
func (s *exitStream) connect(b circuit.Begin) {
	conn, why := s.dial(b)
	h := s.x.h
	h.mu.Lock()
	if h.closed || s.x.streams[s.id] != s {
		h.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		return
	}
	if conn == nil {
		s.endLocked(why)
		h.mu.Unlock()
		return
	}
	s.conn = conn
	ip := netip.Addr{}
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
		ip = ip.Unmap()
	}
	cb, _ := circuit.Connected{IP: ip, TTL: 60}.MarshalBinary()
	err := h.originate(circuit.RelayCell{Command: circuit.RelayConnected, StreamID: s.id, Body: cb})
	h.mu.Unlock()
	if err != nil {
		return
	}
	h.r.work.Add(1)
	go func() { defer h.r.work.Done(); s.writeLoop() }()
	s.readLoop()
}

func (s *exitStream) dial(b circuit.Begin) (net.Conn, circuit.EndReason) {
	r := s.x.h.r
	ctx, cancel := context.WithTimeout(s.ctx, r.cfg.ConnectTimeout)
	defer cancel()
	host := b.Addr.Host
	if host == "" {
		host = b.Addr.IP.String()
	}
	addrs, err := r.cfg.Exit.CheckHost(ctx, host, b.Port)
	if err != nil {
		return nil, endReasonFor(err)
	}
	addrs = preferFamily(addrs, b.Flags)
	if len(addrs) == 0 {
		return nil, circuit.EndExitPolicy
	}
	var last error
	for _, a := range addrs {
		conn, err := r.cfg.Dial(ctx, "tcp", a.String())
		if err == nil {
			return conn, 0
		}
		last = err
	}
	return nil, endReasonFor(last)
}

// preferFamily orders and filters addresses by the client's BEGIN flags.
func preferFamily(addrs []netip.AddrPort, f circuit.BeginFlags) []netip.AddrPort {
	var v4, v6 []netip.AddrPort
	for _, a := range addrs {
		if a.Addr().Is4() {
			if f&circuit.BeginIPv4NotOK == 0 {
				v4 = append(v4, a)
			}
		} else if f&circuit.BeginIPv6OK != 0 || f&circuit.BeginIPv4NotOK != 0 {
			v6 = append(v6, a)
		}
	}
	if f&circuit.BeginIPv6Preferred != 0 {
		return append(v6, v4...)
	}
	return append(v4, v6...)
}

// endReasonFor maps a resolve, policy or dial error to an END reason.
func endReasonFor(err error) circuit.EndReason {
	var ne net.Error
	switch {
	case errors.Is(err, ErrRefusedByPolicy):
		return circuit.EndExitPolicy
	case errors.Is(err, ErrResolveFailed):
		return circuit.EndResolveFailed
	case errors.Is(err, syscall.ECONNREFUSED):
		return circuit.EndConnectRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return circuit.EndNoRoute
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return circuit.EndTimeout
	}
	return circuit.EndMisc
}

// readLoop moves destination data to the client within the circuit's
// congestion window and the stream's XON/XOFF.
func (s *exitStream) readLoop() {
	h := s.x.h
	buf := make([]byte, circuit.MaxRelayBody)
	var r io.Reader = s.conn
	bulk := false
	for {
		if s.gate.Wait(s.ctx) != nil || s.x.send.Acquire(s.ctx) != nil {
			return
		}
		n, err := r.Read(buf)
		if n == len(buf) && !bulk {
			r, bulk = bulkReader(s.conn), true
		}
		h.mu.Lock()
		if h.closed || s.x.streams[s.id] != s {
			h.mu.Unlock()
			s.x.send.Release()
			return
		}
		if n > 0 {
			tag, oerr := h.originateTag(circuit.RelayCell{Command: circuit.RelayData, StreamID: s.id, Body: buf[:n]})
			if oerr != nil {
				h.mu.Unlock()
				s.x.send.Release()
				return
			}
			now := time.Now()
			s.x.send.Sealed(tag, now)
			s.lastActive = now.UnixNano()
		} else {
			s.x.send.Release() // the read ended the stream: no cell was sent
		}
		if err != nil {
			why := circuit.EndDone
			if !errors.Is(err, io.EOF) {
				why = brokenReason(err)
			}
			s.endLocked(why)
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
	}
}

// bulkReader buffers a stream that fills whole cells: one large read from
// the socket fills many cells, where a read per cell would cost a system
// call per 1252 bytes. A stream starts unbuffered, so the many that idle
// or trickle (and a flood of half-open ones) do not each hold 64 KiB.
func bulkReader(conn net.Conn) io.Reader { return bufio.NewReaderSize(conn, 64<<10) }

// writeLoop writes client data to the destination and answers XON. Like
// readLoop it starts with a cell-sized buffer and takes a large one only
// once the client sends more than a cell at a time.
func (s *exitStream) writeLoop() {
	h := s.x.h
	buf := make([]byte, circuit.MaxRelayBody)
	for {
		n, sig, err := s.buf.Read(s.ctx, buf)
		if n > 0 {
			if _, werr := s.conn.Write(buf[:n]); werr != nil {
				s.abort(brokenReason(werr))
				return
			}
		}
		if n == len(buf) && len(buf) < 32<<10 {
			buf = make([]byte, 32<<10)
		}
		if sig == flow.SignalXon {
			h.mu.Lock()
			if !h.closed {
				h.originate(circuit.RelayCell{Command: circuit.RelayXon, StreamID: s.id})
			}
			h.mu.Unlock()
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
			}
			return
		}
	}
}

// brokenReason is the END reason for a connection that failed after its
// connect: refused, if the connect was a Fast Open one whose SYN the
// server refused (seen at the first read or write), else reset.
func brokenReason(err error) circuit.EndReason {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return circuit.EndConnectRefused
	}
	return circuit.EndConnReset
}

// remoteEnd handles the client's END. mu is held.
func (s *exitStream) remoteEnd(body []byte) {
	e, err := circuit.ParseEnd(body)
	if err != nil || e.Reason != circuit.EndDone {
		s.shutdownLocked()
		return
	}
	s.gotEnd = true
	s.buf.CloseWrite(io.EOF)
	if s.conn == nil {
		// Ended before it connected: the data sent so far is still written.
		return
	}
	if s.sentEnd {
		s.shutdownLocked()
	}
}

// endLocked sends END (half-close or abort) to the client. mu is held.
func (s *exitStream) endLocked(why circuit.EndReason) {
	if s.sentEnd {
		return
	}
	s.sentEnd = true
	s.x.h.originate(endCell(s.id, why))
	if why != circuit.EndDone || s.gotEnd {
		s.shutdownLocked()
	}
}

// abort ends the stream both ways from a goroutine that does not hold mu.
func (s *exitStream) abort(why circuit.EndReason) {
	h := s.x.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed && s.x.streams[s.id] == s {
		s.endLocked(why)
		s.shutdownLocked()
	}
}

// shutdownLocked forgets the stream and closes its connection.
func (s *exitStream) shutdownLocked() {
	if s.x.streams[s.id] == s {
		delete(s.x.streams, s.id)
		s.x.h.r.streams.Add(-1)
	}
	s.shutdown()
}

func (s *exitStream) shutdown() {
	s.stop()
	s.gate.Close(nil)
	s.buf.CloseWrite(io.ErrClosedPipe)
	if s.conn != nil {
		s.conn.Close()
	}
}
