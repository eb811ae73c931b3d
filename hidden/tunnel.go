package hidden

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

// A tunnel is the end-to-end byte stream between client and service over
// a spliced circuit: each HS_DATA cell carries one Noise transport message
// whose plaintext is a frame:
//
//	+----------+--------------------------------------------+
//	| type (1) | data (≤ maxFrameData bytes) or credit (4)  |
//	+----------+--------------------------------------------+
//
// A side may have at most tunnelWindow data cells unacknowledged; the
// receiver returns credit as its reader consumes them, so the rendezvous
// point never queues more than a window per direction. The client speaks
// first (it opens every stream): the service sends nothing until the
// client's first cell has come, which proves the splice is complete (its
// RENDEZVOUS1 may reach the rendezvous point before the client's cookie).
const (
	frameData    = 0
	frameCredit  = 1
	maxFrameData = circuit.MaxRelayBody - 16 - 1
	tunnelWindow = 1024
	creditEvery  = tunnelWindow / 4
)

// ErrTunnelClosed is returned by a closed tunnel.
var ErrTunnelClosed = errors.New("hidden: connection to the service closed")

// lostWith is the error of a tunnel whose circuit ended with err: closed
// here, or lost (destroyed by a relay, its link gone), which the session's
// streams report instead of a clean end of file.
func lostWith(err error) error {
	if err == nil || errors.Is(err, client.ErrCircuitClosed) {
		return ErrTunnelClosed
	}
	return fmt.Errorf("hidden: connection to the service lost: %w", err)
}

type tunnel struct {
	c   *client.Circuit
	hop int

	wmu    sync.Mutex // guards send and the order of sealed cells
	send   *noise.CipherState
	credit chan struct{} // one token per cell we may send
	heard  chan struct{} // closed at the first cell from the far end
	once   sync.Once
	listen bool // the service side: wait for heard before sending

	rmu      sync.Mutex // guards the fields below
	recv     *noise.CipherState
	buf      [][]byte
	consumed int // data cells read since the last credit
	err      error
	ready    chan struct{} // signalled when buf grows or err is set
}

func newTunnel(c *client.Circuit, send, recv *noise.CipherState, service bool) *tunnel {
	t := &tunnel{c: c, hop: len(c.Hops()) - 1, send: send, recv: recv, listen: service,
		credit: make(chan struct{}, 4*tunnelWindow), ready: make(chan struct{}, 1), heard: make(chan struct{})}
	for range tunnelWindow {
		t.credit <- struct{}{}
	}
	go func() {
		<-c.Done()
		t.fail(lostWith(c.Err()))
	}()
	return t
}

// onCell handles an HS_DATA cell from the far end (the circuit's control
// handler: one call at a time).
func (t *tunnel) onCell(body []byte) {
	t.rmu.Lock()
	if t.err != nil {
		t.rmu.Unlock()
		return
	}
	p, err := t.recv.Decrypt(nil, nil, body)
	t.rmu.Unlock()
	if err != nil {
		t.c.Close()
		return
	}
	t.once.Do(func() { close(t.heard) })
	f, err := parseFrame(p)
	if err != nil {
		t.c.Close()
		return
	}
	if f.typ == frameData {
		t.rmu.Lock()
		t.buf = append(t.buf, f.data)
		t.rmu.Unlock()
		t.signal()
		return
	}
	for range f.credit {
		select {
		case t.credit <- struct{}{}:
		default: // more credit than ever granted: the peer misbehaves
		}
	}
}

type frame struct {
	typ    byte
	data   []byte
	credit uint32
}

var errFrame = errors.New("hidden: malformed tunnel frame")

// parseFrame decodes a decrypted tunnel frame; data aliases p.
func parseFrame(p []byte) (frame, error) {
	switch {
	case len(p) == 0 || len(p) > maxFrameData+1:
		return frame{}, errFrame
	case p[0] == frameData:
		return frame{typ: frameData, data: p[1:]}, nil
	case p[0] == frameCredit && len(p) == 5:
		n := binary.BigEndian.Uint32(p[1:])
		if n == 0 || n > tunnelWindow {
			return frame{}, errFrame
		}
		return frame{typ: frameCredit, credit: n}, nil
	}
	return frame{}, errFrame
}

func (f frame) marshal() []byte {
	if f.typ == frameCredit {
		return binary.BigEndian.AppendUint32([]byte{frameCredit}, f.credit)
	}
	return append([]byte{frameData}, f.data...)
}

func (t *tunnel) signal() {
	select {
	case t.ready <- struct{}{}:
	default:
	}
}

func (t *tunnel) fail(err error) {
	t.rmu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.rmu.Unlock()
	t.signal()
}

// Read returns data in order.
func (t *tunnel) Read(p []byte) (int, error) {
	for {
		t.rmu.Lock()
		if len(t.buf) > 0 {
			n := copy(p, t.buf[0])
			if n == len(t.buf[0]) {
				t.buf = t.buf[1:]
				t.consumed++
			} else {
				t.buf[0] = t.buf[0][n:]
			}
			grant := t.consumed >= creditEvery
			if grant {
				t.consumed -= creditEvery
			}
			t.rmu.Unlock()
			if grant {
				t.sendFrame(frameCredit, binary.BigEndian.AppendUint32(nil, creditEvery), false)
			}
			return n, nil
		}
		err := t.err
		t.rmu.Unlock()
		if err == ErrTunnelClosed {
			return 0, io.EOF // closed here: the session ends cleanly
		}
		if err != nil {
			return 0, err
		}
		<-t.ready
	}
}

// Write sends p in cells, waiting for credit.
func (t *tunnel) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), maxFrameData)
		if err := t.sendFrame(frameData, p[:k], true); err != nil {
			return n, err
		}
		n, p = n+k, p[k:]
	}
	return n, nil
}

func (t *tunnel) sendFrame(typ byte, data []byte, counted bool) error {
	if t.listen {
		select {
		case <-t.heard:
		case <-t.c.Done():
			return ErrTunnelClosed
		}
	}
	if counted {
		select {
		case <-t.credit:
		case <-t.c.Done():
			return ErrTunnelClosed
		}
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	ct, err := t.send.Encrypt(nil, nil, append([]byte{typ}, data...))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := t.c.SendTo(ctx, t.hop, circuit.RelayCell{Command: descriptor.CmdHSData, Body: ct}); err != nil {
		return ErrTunnelClosed
	}
	return nil
}

func (t *tunnel) Close() error {
	t.c.Close()
	t.fail(ErrTunnelClosed)
	return nil
}

func (t *tunnel) LocalAddr() net.Addr              { return tunnelAddr{} }
func (t *tunnel) RemoteAddr() net.Addr             { return tunnelAddr{} }
func (t *tunnel) SetDeadline(time.Time) error      { return nil }
func (t *tunnel) SetReadDeadline(time.Time) error  { return nil }
func (t *tunnel) SetWriteDeadline(time.Time) error { return nil }
func (tunnelAddr) Network() string                 { return "obol" }
func (tunnelAddr) String() string                  { return "obol-tunnel" }

type tunnelAddr struct{}
