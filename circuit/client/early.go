package client

import (
	"context"
	"fmt"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/flow"
	"github.com/obolnet/obol/circuit/link"
)

// MaxEarlyData is how much first-stream data BuildDial sends with the
// build: the BEGIN and these bytes ride behind the CREATE as RELAY_EARLY
// cells (at most 8 per circuit, 04 §9).
const MaxEarlyData = (circuit.DefaultMaxEarlyCells - 1) * circuit.MaxRelayBody

// BuildDial builds a circuit through path and opens a stream to host:port
// in the same flight: the BEGIN and the first len(data) ≤ MaxEarlyData
// bytes travel as 0-RTT cells right behind the CREATE, so the answer's
// first byte arrives one round trip after the build starts. 0-RTT cells
// are encrypted under keys without forward secrecy against a later
// compromise of the exit's onion key (04 §9); data that must not be
// exposed that way should be written after BuildDial returns.
func BuildDial(ctx context.Context, links *link.Manager, path []Hop, host string, port uint16, data []byte) (*Circuit, *Stream, error) {
	if len(data) > MaxEarlyData {
		return nil, nil, fmt.Errorf("client: %d bytes of early data, at most %d", len(data), MaxEarlyData)
	}
	c, create, err := newCircuit(time.Now(), path)
	if err != nil {
		return nil, nil, err
	}
	s, early, err := c.earlyStream(ctx, host, port, data)
	if err != nil {
		return nil, nil, err
	}
	if err := c.start(ctx, links, path[0].Peer, create, early); err != nil {
		return nil, nil, err
	}
	if err := c.awaitBuilt(ctx); err != nil {
		return nil, nil, err
	}
	if err := s.wait(ctx); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, s, nil
}

// earlyStream registers the first stream and seals its BEGIN and data
// under the build's early keys.
func (c *Circuit) earlyStream(ctx context.Context, host string, port uint16, data []byte) (*Stream, [][]byte, error) {
	body, err := beginBody(host, port)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := newStream(c, 1)
	c.nextID = 2
	c.streams[s.id] = s
	exit := c.exit()
	p, err := c.build.SealEarly(exit, circuit.RelayCell{Command: circuit.RelayBegin, StreamID: s.id, Body: body})
	if err != nil {
		return nil, nil, err
	}
	early := [][]byte{p}
	for len(data) > 0 {
		n := min(len(data), circuit.MaxRelayBody)
		if err := c.send.Acquire(ctx); err != nil {
			return nil, nil, err
		}
		// An early cell's tag is never echoed: at most 7 of them, and
		// SENDMEs acknowledge every 50th cell.
		c.send.Sealed(flow.Tag{}, time.Now())
		p, err := c.build.SealEarly(exit, circuit.RelayCell{Command: circuit.RelayData, StreamID: s.id, Body: data[:n]})
		if err != nil {
			return nil, nil, err
		}
		early = append(early, p)
		data = data[n:]
	}
	return s, early, nil
}

// BuildPrepared builds a circuit through path in one round trip, with
// cells for its last hop sent as 0-RTT (RELAY_EARLY) right behind the
// CREATE: a request to the last hop (a hidden-service introduction, a
// descriptor fetch) is answered one round trip after the build starts.
// prepare is called with the circuit before anything is sent — set its
// control handler there, so that no answer is missed — and returns those
// cells, at most circuit.DefaultMaxEarlyCells. Like BuildDial's, they
// have no forward secrecy against a later compromise of the last hop's
// onion key (04 §9): the last hop reads them in any case. The CREATE is
// made at now (Config.CreateClock).
func BuildPrepared(ctx context.Context, links *link.Manager, now time.Time, path []Hop, prepare func(*Circuit) ([]circuit.RelayCell, error)) (*Circuit, error) {
	c, create, err := newCircuit(now, path)
	if err != nil {
		return nil, err
	}
	cells, err := prepare(c)
	if err != nil {
		return nil, err
	}
	if len(cells) > circuit.DefaultMaxEarlyCells {
		return nil, fmt.Errorf("client: %d early cells, at most %d", len(cells), circuit.DefaultMaxEarlyCells)
	}
	early := make([][]byte, len(cells))
	c.mu.Lock()
	for i, rc := range cells {
		if early[i], err = c.build.SealEarly(c.exit(), rc); err != nil {
			break
		}
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := c.start(ctx, links, path[0].Peer, create, early); err != nil {
		return nil, err
	}
	return c, c.awaitBuilt(ctx)
}
