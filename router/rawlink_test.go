package router_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
)

// rawLink is a link channel driven by hand over a libp2p stream, for a
// peer that misbehaves below the link layer: it writes what it likes and
// reads only when it chooses to.
type rawLink struct {
	s      network.Stream
	r      *bufio.Reader
	nextID uint32
}

// dialRawLink opens a link-protocol stream from a fresh host to ai.
func dialRawLink(ctx context.Context, tb testing.TB, ai peer.AddrInfo) *rawLink {
	h := newHost(tb)
	tb.Cleanup(func() { h.Close() })
	return dialRawLinkFrom(ctx, tb, h, ai)
}

func dialRawLinkFrom(ctx context.Context, tb testing.TB, h host.Host, ai peer.AddrInfo) *rawLink {
	h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	s, err := h.NewStream(ctx, ai.ID, link.Protocol)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Reset() })
	return &rawLink{s: s, r: bufio.NewReader(s), nextID: 1}
}

// write sends one cell.
func (l *rawLink) write(id uint32, cmd circuit.Command, payload []byte) error {
	cell := make([]byte, circuit.CellSize)
	binary.BigEndian.PutUint32(cell, id)
	cell[4] = byte(cmd)
	copy(cell[circuit.CellHeaderLen:], payload)
	_, err := l.s.Write(cell)
	return err
}

// readAny returns the next cell.
// A raw link never acknowledges (so the relay keeps no link window for
// it) and skips the relay's LINK_ACKs.
func (l *rawLink) readAny() ([]byte, error) {
	cell := make([]byte, circuit.CellSize)
	for {
		if _, err := io.ReadFull(l.r, cell); err != nil {
			return cell, err
		}
		if binary.BigEndian.Uint32(cell) != 0 || circuit.Command(cell[4]) != link.CmdLinkAck {
			return cell, nil
		}
	}
}

// read returns the next cell of circuit id, dropping other circuits'.
func (l *rawLink) read(id uint32) ([]byte, error) {
	cell := make([]byte, circuit.CellSize)
	for {
		if _, err := io.ReadFull(l.r, cell); err != nil {
			return nil, err
		}
		if binary.BigEndian.Uint32(cell) == id {
			return cell, nil
		}
	}
}

// rawCircuit is a circuit built over a rawLink.
type rawCircuit struct {
	l  *rawLink
	id uint32
	cc *circuit.ClientCircuit
}

// build builds a circuit through path on the link (the opener's IDs carry
// the initiator bit).
func (l *rawLink) build(path []client.Hop) (*rawCircuit, error) {
	var specs []circuit.HopSpec
	for _, h := range path {
		specs = append(specs, circuit.HopSpec{PeerID: []byte(h.Peer.ID), OnionKey: h.OnionKey})
	}
	b, create, err := circuit.NewBuild(rand.Reader, time.Now(), specs)
	if err != nil {
		return nil, err
	}
	id := l.nextID | 1<<31
	l.nextID++
	if err := l.write(id, circuit.CmdCreate, create); err != nil {
		return nil, err
	}
	l.s.SetReadDeadline(time.Now().Add(time.Minute)) // a lost CREATE fails, not hangs
	defer l.s.SetReadDeadline(time.Time{})
	cell, err := l.read(id)
	if err != nil {
		return nil, err
	}
	if circuit.Command(cell[4]) != circuit.CmdCreated {
		why, _ := circuit.ParseDestroy(cell[circuit.CellHeaderLen:])
		return nil, fmt.Errorf("build: got %v (%v)", circuit.Command(cell[4]), why)
	}
	cc, err := b.Finish(cell[circuit.CellHeaderLen:])
	if err != nil {
		return nil, err
	}
	return &rawCircuit{l: l, id: id, cc: cc}, nil
}

// send seals rc to hop and writes it.
func (c *rawCircuit) send(hop int, rc circuit.RelayCell) error {
	p, err := c.cc.Seal(hop, rc)
	if err != nil {
		return err
	}
	return c.l.write(c.id, circuit.CmdRelay, p)
}

// begin opens stream 1 to 127.0.0.1:port at the last hop.
func (c *rawCircuit) begin(port uint16) error {
	bb, _ := circuit.Begin{Addr: circuit.Address{Host: "127.0.0.1"}, Port: port}.MarshalBinary()
	return c.send(c.cc.Len()-1, circuit.RelayCell{Command: circuit.RelayBegin, StreamID: 1, Body: bb})
}

// request asks for n bytes on stream 1.
func (c *rawCircuit) request(n int) error {
	req := fmt.Sprintf("GET /bytes/%d HTTP/1.0\r\nHost: x\r\n\r\n", n)
	return c.send(c.cc.Len()-1, circuit.RelayCell{Command: circuit.RelayData, StreamID: 1, Body: []byte(req)})
}
