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
	c, create, err := newCircuit(path)
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
