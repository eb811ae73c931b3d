package link

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/obolnet/obol/circuit"
)

// Link padding (specs/03-link.md, "Link padding"), after Tor's channel
// padding: while a channel carries nothing, each side sends a PADDING
// cell (circuit ID 0, command 0) now and then, so an observer of the
// connection does not see when its circuits start and stop. The
// receiver drops PADDING at the link layer: no circuit, meter, window
// or LINK_ACK count ever sees it.
//
// The padder of a channel repeats: draw d = max(U1, U2), U uniform in
// [low, high]; if no cell other than link padding was read or written on
// the channel during the next d, send one PADDING cell.
//
// PADDING_NEGOTIATE, circuit ID 0, command 0x81, asks the peer to pad
// less or not at all:
//
//	+---------+---------+-------------+--------------+---------+
//	| version | command | low ms(u16) | high ms(u16) | zeros   |
//	+---------+---------+-------------+--------------+---------+
//	     1         1           2              2      PayloadLen − 6

// Link-level commands of padding.
const (
	CmdPadding                          = circuit.CmdPadding
	CmdPaddingNegotiate circuit.Command = 0x81
)

// PADDING_NEGOTIATE commands and version.
const (
	paddingNegotiateVersion = 0
	PaddingStop             = 1
	PaddingStart            = 2
)

// PaddingMode is how much a node pads its channels.
type PaddingMode int

const (
	// PaddingOn pads at the default intervals (DefaultPaddingLow–High).
	PaddingOn PaddingMode = iota
	// PaddingReduced pads at the longer reduced intervals, and asks each
	// peer to do the same (Tor's ReducedConnectionPadding).
	PaddingReduced
	// PaddingOff sends no padding and asks each peer to send none.
	PaddingOff
)

func (m PaddingMode) String() string {
	switch m {
	case PaddingOn:
		return "on"
	case PaddingReduced:
		return "reduced"
	case PaddingOff:
		return "off"
	}
	return fmt.Sprintf("PaddingMode(%d)", int(m))
}

// Padding intervals: each padding timeout is the larger of two uniform
// draws in [low, high] (Tor's netflow padding defaults).
const (
	DefaultPaddingLow  = 1500 * time.Millisecond
	DefaultPaddingHigh = 9500 * time.Millisecond
	ReducedPaddingLow  = 9000 * time.Millisecond
	ReducedPaddingHigh = 14000 * time.Millisecond
	// MinPaddingLow is the shortest low bound a node accepts in its own
	// configuration, so a misconfigured node cannot flood its links.
	MinPaddingLow = 100 * time.Millisecond
)

// PaddingConfig configures a manager's link padding. The zero value pads
// at the default intervals.
type PaddingConfig struct {
	Mode PaddingMode
	// Low and High override the mode's intervals (tests; both or none).
	Low, High time.Duration
	// Clock times the padding (nil: the system clock); tests inject a
	// fake one.
	Clock Clock
}

// Clock is the time source of link padding.
type Clock interface {
	// Timer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	Timer(d time.Duration) (<-chan time.Time, func() bool)
}

type systemClock struct{}

func (systemClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// ErrBadPaddingNegotiate is a PADDING_NEGOTIATE that is malformed.
var ErrBadPaddingNegotiate = errors.New("link: bad PADDING_NEGOTIATE")

// PaddingNegotiate is the body of a PADDING_NEGOTIATE cell.
type PaddingNegotiate struct {
	Command   uint8  // PaddingStop or PaddingStart
	Low, High uint16 // milliseconds; for PaddingStart, 0 < Low ≤ High
}

// MarshalPayload encodes n as a cell payload.
func (n PaddingNegotiate) MarshalPayload() []byte {
	p := make([]byte, circuit.PayloadLen)
	p[0], p[1] = paddingNegotiateVersion, n.Command
	binary.BigEndian.PutUint16(p[2:], n.Low)
	binary.BigEndian.PutUint16(p[4:], n.High)
	return p
}

// ParsePaddingNegotiate decodes a PADDING_NEGOTIATE payload.
func ParsePaddingNegotiate(p []byte) (PaddingNegotiate, error) {
	if len(p) != circuit.PayloadLen {
		return PaddingNegotiate{}, fmt.Errorf("%w: %d bytes", ErrBadPaddingNegotiate, len(p))
	}
	if p[0] != paddingNegotiateVersion {
		return PaddingNegotiate{}, fmt.Errorf("%w: version %d", ErrBadPaddingNegotiate, p[0])
	}
	for _, b := range p[6:] {
		if b != 0 {
			return PaddingNegotiate{}, fmt.Errorf("%w: non-zero padding", ErrBadPaddingNegotiate)
		}
	}
	n := PaddingNegotiate{Command: p[1], Low: binary.BigEndian.Uint16(p[2:]), High: binary.BigEndian.Uint16(p[4:])}
	switch {
	case n.Command == PaddingStop && (n.Low != 0 || n.High != 0):
		return PaddingNegotiate{}, fmt.Errorf("%w: STOP with intervals", ErrBadPaddingNegotiate)
	case n.Command == PaddingStart && (n.Low == 0 || n.Low > n.High):
		return PaddingNegotiate{}, fmt.Errorf("%w: intervals %d–%d ms", ErrBadPaddingNegotiate, n.Low, n.High)
	case n.Command != PaddingStop && n.Command != PaddingStart:
		return PaddingNegotiate{}, fmt.Errorf("%w: command %d", ErrBadPaddingNegotiate, n.Command)
	}
	return n, nil
}

// padInterval is a pair of bounds; zero means no padding.
type padInterval struct{ low, high time.Duration }

func (p padInterval) off() bool { return p.high == 0 }

// draw returns max(U1, U2), U uniform in [low, high].
func (p padInterval) draw(r *rand.Rand) time.Duration {
	span := int64(p.high-p.low) + 1
	a, b := r.Int64N(span), r.Int64N(span)
	return p.low + time.Duration(max(a, b))
}

// own returns the interval a config pads at by itself.
func (c PaddingConfig) own() padInterval {
	switch {
	case c.Mode == PaddingOff:
		return padInterval{}
	case c.Low > 0 || c.High > 0:
		return padInterval{c.Low, c.High}
	case c.Mode == PaddingReduced:
		return padInterval{ReducedPaddingLow, ReducedPaddingHigh}
	}
	return padInterval{DefaultPaddingLow, DefaultPaddingHigh}
}

// request is the PADDING_NEGOTIATE a node with this config sends when a
// channel opens, or false for none.
func (c PaddingConfig) request() (PaddingNegotiate, bool) {
	switch c.Mode {
	case PaddingOff:
		return PaddingNegotiate{Command: PaddingStop}, true
	case PaddingReduced:
		return PaddingNegotiate{Command: PaddingStart,
			Low: uint16(ReducedPaddingLow / time.Millisecond), High: uint16(ReducedPaddingHigh / time.Millisecond)}, true
	}
	return PaddingNegotiate{}, false
}

// Validate checks the configuration.
func (c PaddingConfig) Validate() error {
	if c.Mode < PaddingOn || c.Mode > PaddingOff {
		return fmt.Errorf("link: padding mode %d", int(c.Mode))
	}
	if (c.Low > 0 || c.High > 0) && (c.Low < MinPaddingLow || c.Low > c.High) {
		return fmt.Errorf("link: padding interval %v–%v", c.Low, c.High)
	}
	return nil
}

// effective combines a node's own interval with its peer's request: a
// peer can ask for less padding (later and rarer), never for more.
func effective(own padInterval, req *PaddingNegotiate) padInterval {
	switch {
	case own.off() || req == nil:
		return own
	case req.Command == PaddingStop:
		return padInterval{}
	}
	low := time.Duration(req.Low) * time.Millisecond
	high := time.Duration(req.High) * time.Millisecond
	return padInterval{max(own.low, low), max(own.high, high)}
}

// padState is a channel's padding state.
type padState struct {
	changed chan struct{} // a token when the peer's request changed

	mu  sync.Mutex // guards req
	req *PaddingNegotiate
}

// isLinkPadding reports whether cell is a link-level padding or
// negotiation cell: one that no window or count includes.
func isLinkPadding(cell []byte) bool {
	if binary.BigEndian.Uint32(cell) != 0 {
		return false
	}
	cmd := circuit.Command(cell[4])
	return cmd == CmdPadding || cmd == CmdPaddingNegotiate
}

// onPaddingNegotiate takes the peer's request.
func (ch *Channel) onPaddingNegotiate(payload []byte) error {
	n, err := ParsePaddingNegotiate(payload)
	if err != nil {
		return err
	}
	ch.pad.mu.Lock()
	ch.pad.req = &n
	ch.pad.mu.Unlock()
	signal(ch.pad.changed)
	return nil
}

// padInterval is the interval the channel pads at now.
func (ch *Channel) padInterval() padInterval {
	ch.pad.mu.Lock()
	defer ch.pad.mu.Unlock()
	return effective(ch.m.cfg.Padding.own(), ch.pad.req)
}

// padLoop sends link padding while the channel is idle, until it closes.
func (ch *Channel) padLoop() {
	if req, ok := ch.m.cfg.Padding.request(); ok {
		cell := NewCell()
		cell[4] = byte(CmdPaddingNegotiate)
		copy(cell[circuit.CellHeaderLen:], req.MarshalPayload())
		if ch.send(context.Background(), nil, cell) != nil {
			return
		}
	}
	clock := ch.m.cfg.Padding.Clock
	if clock == nil {
		clock = systemClock{}
	}
	r := rand.New(rand.NewChaCha8(seed()))
	for {
		iv := ch.padInterval()
		if iv.off() {
			select {
			case <-ch.pad.changed:
				continue
			case <-ch.done:
				return
			}
		}
		seen := ch.activity.Load()
		fired, stop := clock.Timer(iv.draw(r))
		select {
		case <-fired:
		case <-ch.pad.changed:
			stop()
			continue
		case <-ch.done:
			stop()
			return
		}
		if ch.activity.Load() != seen {
			continue // not idle: draw again
		}
		cell := NewCell() // circuit ID 0, command PADDING, zeros
		if ch.send(context.Background(), nil, cell) != nil {
			return
		}
		ch.m.counts.paddingSent.Add(1)
	}
}

// seed returns a fresh seed for a padder's generator.
func seed() [32]byte {
	var s [32]byte
	for i := range 4 {
		binary.LittleEndian.PutUint64(s[8*i:], rand.Uint64())
	}
	return s
}

// onLinkPadding takes a PADDING or PADDING_NEGOTIATE cell the reader
// read: it is dropped here, counted by nothing but the padding stats.
func (ch *Channel) onLinkPadding(cell []byte) error {
	if circuit.Command(cell[4]) == CmdPaddingNegotiate {
		return ch.onPaddingNegotiate(cell[circuit.CellHeaderLen:])
	}
	ch.m.counts.paddingReceived.Add(1)
	return nil
}
