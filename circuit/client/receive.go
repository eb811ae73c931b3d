package client

import (
	"context"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/flow"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/circuit/padding"
)

// HandleCell processes one inbound cell (link.Handler).
func (c *Circuit) HandleCell(_ *link.Circ, cell []byte) {
	defer link.Release(cell)
	cmd, p := circuit.Command(cell[4]), cell[circuit.CellHeaderLen:]
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if c.cc == nil {
		c.building(cmd, p)
		return
	}
	hop, rc, err := c.cc.Receive(cmd, p)
	if err != nil {
		c.mu.Unlock()
		c.fail(err, reasonFor(err))
		return
	}
	if hop < 0 {
		c.mu.Unlock()
		return
	}
	if pad, err := c.padCell(rc); pad {
		c.mu.Unlock()
		if err != nil {
			c.fail(err, circuit.DestroyProtocol)
		}
		return
	}
	c.padEvent(padding.StopOnBackward)
	if hop != c.exit() || !isStreamCell(rc) {
		ctl := c.control
		if rc.Command == circuit.RelayPayAck {
			ctl = c.payment
		}
		c.mu.Unlock()
		if ctl != nil {
			ctl(hop, rc)
		}
		return
	}
	err = c.streamCell(rc)
	c.mu.Unlock()
	if err != nil {
		c.fail(err, circuit.DestroyProtocol)
	}
}

// building handles a cell before CREATED. mu is held; it unlocks.
func (c *Circuit) building(cmd circuit.Command, p []byte) {
	switch cmd {
	case circuit.CmdCreated:
		cc, err := c.build.Finish(p)
		c.build = nil
		if err != nil {
			c.mu.Unlock()
			c.fail(err, circuit.DestroyHandshake)
			return
		}
		c.cc = cc
		c.built <- nil
		c.mu.Unlock()
	case circuit.CmdDestroy:
		why, _ := circuit.ParseDestroy(p)
		c.mu.Unlock()
		c.fail(&circuit.DestroyedError{Reason: why}, circuit.DestroyNone)
	default:
		c.mu.Unlock()
		c.fail(circuit.ErrUnexpectedCell, circuit.DestroyProtocol)
	}
}

func reasonFor(err error) circuit.DestroyReason {
	if _, ok := err.(*circuit.DestroyedError); ok {
		return circuit.DestroyNone // the circuit is already gone
	}
	return circuit.DestroyReasonFor(err)
}

func isStreamCell(rc circuit.RelayCell) bool {
	switch rc.Command {
	case circuit.RelayData, circuit.RelayEnd, circuit.RelayConnected, circuit.RelaySendme,
		circuit.RelayResolved, circuit.RelayXon, circuit.RelayXoff:
		return true
	}
	return false
}

// streamCell handles a cell from the exit. mu is held.
func (c *Circuit) streamCell(rc circuit.RelayCell) error {
	if rc.Command == circuit.RelaySendme && rc.StreamID == 0 {
		m, err := circuit.ParseSendme(rc.Body)
		if err != nil {
			return err
		}
		return c.send.OnSendme(time.Now(), flow.Tag(m.Tag))
	}
	if rc.Command == circuit.RelayData {
		c.rx.add(len(rc.Body), time.Now())
		if tag, due := c.recv.OnData(flow.Tag(rc.Tag)); due {
			sm, _ := circuit.Sendme{Tag: tag}.MarshalBinary()
			if err := c.sealLocked(context.Background(), c.exit(), circuit.RelayCell{Command: circuit.RelaySendme, Body: sm}); err != nil {
				return err
			}
		}
	}
	s := c.streams[rc.StreamID]
	if s == nil {
		return nil // the stream is gone; cells in flight are dropped
	}
	switch rc.Command {
	case circuit.RelayData:
		return c.streamData(s, rc.Body)
	case circuit.RelayConnected:
		s.connected(rc.Body)
	case circuit.RelayResolved:
		s.resolved(rc.Body)
	case circuit.RelayEnd:
		c.remoteEnd(s, rc.Body)
	case circuit.RelayXoff:
		s.gate.Set(true)
	case circuit.RelayXon:
		s.gate.Set(false)
	}
	return nil
}

func (c *Circuit) streamData(s *Stream, body []byte) error {
	sig, err := s.buf.Push(flow.CopyChunk(body))
	if err != nil {
		c.abortLocked(s, circuit.EndProtocol)
		return nil
	}
	if sig == flow.SignalXoff {
		return c.sealLocked(context.Background(), c.exit(), circuit.RelayCell{Command: circuit.RelayXoff, StreamID: s.id})
	}
	return nil
}

// CircuitClosed: the channel to the first hop died (link.Handler).
func (c *Circuit) CircuitClosed(_ *link.Circ, err error) {
	c.fail(err, circuit.DestroyNone)
}
