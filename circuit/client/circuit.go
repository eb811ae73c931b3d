// Package client builds circuits and opens streams through them: the
// client side of obol's circuit protocol over link channels. A Circuit is
// built in one round trip for the whole path; its streams are net.Conns.
package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/flow"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/circuit/padding"
)

// Hop is one relay of a path, as the client knows it from the relay's
// verified descriptor.
type Hop struct {
	Peer     peer.AddrInfo // addresses are used for the first hop only
	OnionKey [32]byte
}

// Errors a circuit reports.
var (
	ErrBuildFailed   = errors.New("client: circuit build failed")
	ErrCircuitClosed = errors.New("client: circuit closed")
	ErrTooManyStream = errors.New("client: no free stream ID")
)

// Circuit is an open circuit. Its methods are safe for concurrent use.
//
// The link layer delivers inbound cells to HandleCell one at a time; mu
// orders sealing and sending forward cells (the layers are stateful).
type Circuit struct {
	hops  []peer.ID
	lc    *link.Circ
	built chan error // the build's outcome, once

	send *flow.Sender  // client → exit DATA
	recv flow.Receiver // exit → client DATA

	mu      sync.Mutex     // guards the fields below
	build   *circuit.Build // until CREATED
	cc      *circuit.ClientCircuit
	streams map[uint16]*Stream
	nextID  uint16
	err     error
	control func(hop int, rc circuit.RelayCell)
	payment func(hop int, rc circuit.RelayCell)
	done    chan struct{}
	rx      rxMeter   // DATA from the exit (capacity.go)
	pad     clientPad // circuit padding (padding.go)
}

// Build builds a circuit through path (1–8 hops; the last is the exit or
// the hop streams end at) in one round trip, over links.
func Build(ctx context.Context, links *link.Manager, path []Hop) (*Circuit, error) {
	c, create, err := newCircuit(time.Now(), path)
	if err != nil {
		return nil, err
	}
	if err := c.start(ctx, links, path[0].Peer, create, nil); err != nil {
		return nil, err
	}
	return c, c.awaitBuilt(ctx)
}

// newCircuit prepares the build of path: the circuit and its CREATE, made
// at now.
func newCircuit(now time.Time, path []Hop) (*Circuit, []byte, error) {
	if len(path) == 0 || len(path) > circuit.MaxHops {
		return nil, nil, fmt.Errorf("%w: %d hops", ErrBuildFailed, len(path))
	}
	specs := make([]circuit.HopSpec, len(path))
	ids := make([]peer.ID, len(path))
	for i, h := range path {
		specs[i] = circuit.HopSpec{PeerID: []byte(h.Peer.ID), OnionKey: h.OnionKey}
		ids[i] = h.Peer.ID
	}
	b, create, err := circuit.NewBuild(rand.Reader, now, specs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBuildFailed, err)
	}
	c := &Circuit{hops: ids, built: make(chan error, 1), build: b, send: flow.NewSender(),
		streams: map[uint16]*Stream{}, nextID: 1, done: make(chan struct{})}
	return c, create, nil
}

// start sends the CREATE, then the early cells (0-RTT, RELAY_EARLY), to
// the first hop.
func (c *Circuit) start(ctx context.Context, links *link.Manager, first peer.AddrInfo, create []byte, early [][]byte) error {
	ch, err := links.Channel(ctx, first)
	if err != nil {
		return fmt.Errorf("%w: first hop: %v", ErrBuildFailed, err)
	}
	if c.lc, err = ch.Open(c); err != nil {
		return fmt.Errorf("%w: %v", ErrBuildFailed, err)
	}
	err = c.lc.Send(ctx, circuit.CmdCreate, create)
	for _, p := range early {
		if err == nil {
			err = c.lc.Send(ctx, circuit.CmdRelayEarly, p)
		}
	}
	if err != nil {
		c.lc.Close()
		return fmt.Errorf("%w: %v", ErrBuildFailed, err)
	}
	return nil
}

// awaitBuilt waits until HandleCell has finished the build.
func (c *Circuit) awaitBuilt(ctx context.Context) error {
	select {
	case err := <-c.built:
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBuildFailed, err)
		}
		return nil
	case <-ctx.Done():
		c.fail(ctx.Err(), circuit.DestroyTimeout)
		return fmt.Errorf("%w: %v", ErrBuildFailed, ctx.Err())
	}
}

// Hops are the relays of the circuit, first hop first.
func (c *Circuit) Hops() []peer.ID { return append([]peer.ID(nil), c.hops...) }

// Done is closed when the circuit has closed.
func (c *Circuit) Done() <-chan struct{} { return c.done }

// Err is why the circuit closed, or nil.
func (c *Circuit) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// SetControl sets the handler of relay cells from any hop that are
// neither stream cells nor payment replies (hidden-service answers); it
// is called with mu not held.
func (c *Circuit) SetControl(f func(hop int, rc circuit.RelayCell)) {
	c.mu.Lock()
	c.control = f
	c.mu.Unlock()
}

// setPayment sets the handler of payment replies (RelayPayAck), kept
// apart from the control handler so that a circuit can be paid whatever
// else it carries.
func (c *Circuit) setPayment(f func(hop int, rc circuit.RelayCell)) {
	c.mu.Lock()
	c.payment = f
	c.mu.Unlock()
}

// SendTo seals rc to hop (0-based) and sends it: a control cell for one
// hop, such as a payment.
func (c *Circuit) SendTo(ctx context.Context, hop int, rc circuit.RelayCell) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sealLocked(ctx, hop, rc)
}

func (c *Circuit) sealLocked(ctx context.Context, hop int, rc circuit.RelayCell) error {
	_, err := c.sealTagLocked(ctx, hop, rc)
	return err
}

// sealTagLocked is sealLocked returning the cell's tag.
func (c *Circuit) sealTagLocked(ctx context.Context, hop int, rc circuit.RelayCell) (flow.Tag, error) {
	if c.err != nil {
		return flow.Tag{}, c.err
	}
	cell := link.NewCell()
	tag, err := c.cc.SealInto(cell[circuit.CellHeaderLen:], hop, rc)
	if err != nil {
		link.Release(cell)
		return flow.Tag{}, err
	}
	cell[4] = byte(circuit.CmdRelay)
	if rc.Command != circuit.RelayDrop {
		c.padEvent(padding.StopOnForward)
	}
	return flow.Tag(tag), c.lc.SendCell(ctx, cell)
}

// exit is the index of the hop streams end at.
func (c *Circuit) exit() int { return len(c.hops) - 1 }

// Close destroys the circuit.
func (c *Circuit) Close() error {
	c.fail(ErrCircuitClosed, circuit.DestroyRequested)
	return nil
}

// fail closes the circuit with err, telling the first hop why unless the
// circuit is already gone.
func (c *Circuit) fail(err error, why circuit.DestroyReason) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.stopPadding()
	streams := c.streams
	c.streams = map[uint16]*Stream{}
	c.mu.Unlock()
	if why != circuit.DestroyNone {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c.lc.Send(ctx, circuit.CmdDestroy, circuit.DestroyPayload(why))
		cancel()
	}
	c.lc.Close()
	c.send.Close(err)
	for _, s := range streams {
		s.settle(answerLost)
		s.closeRemote(err)
	}
	close(c.done)
	select {
	case c.built <- err:
	default:
	}

}

// NumStreams is the number of open streams.
func (c *Circuit) NumStreams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams)
}
