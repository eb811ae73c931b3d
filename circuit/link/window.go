package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/obolnet/obol/circuit"
)

// Link flow control (specs/03-link.md, "Link window"): the receiver of a
// channel acknowledges the cells it has read, and the sender keeps at
// most a window of cells written but not acknowledged, sized by TCP
// Vegas from the round trip of the acknowledgements. The cells beyond it
// wait in the scheduler, where quieter circuits can still pass them,
// instead of in the transport's buffers, where nothing can.
//
// LINK_ACK, circuit ID 0:
//
//	+------------------+-----------------+
//	| cells read (u64) | zeros           |
//	+------------------+-----------------+
//	        8            PayloadLen − 8
//
// A sender that has never received a LINK_ACK keeps no window, so a
// peer that does not acknowledge is served as before.

// CmdLinkAck is the link-level acknowledgement command.
const CmdLinkAck circuit.Command = 0x80

// Window parameters, in cells.
const (
	ackEvery      = 32   // a LINK_ACK after every ackEvery cells read
	initialWindow = 256  // until round trips have been measured
	minWindow     = 128  // never below: a quarter MiB in flight
	maxWindow     = 8192 // never above: 10 MiB in flight
	windowStep    = 32   // growth or shrink per acknowledgement
	vegasLow      = 64   // cells queued in the path below which the window grows
	vegasHigh     = 128  // and above which it shrinks
)

// ErrBadLinkAck is a LINK_ACK that is malformed, goes backwards or
// acknowledges cells never sent.
var ErrBadLinkAck = errors.New("link: bad LINK_ACK")

// parseLinkAck returns the count a LINK_ACK payload carries.
func parseLinkAck(payload []byte) (uint64, error) {
	if len(payload) != circuit.PayloadLen {
		return 0, fmt.Errorf("%w: %d bytes", ErrBadLinkAck, len(payload))
	}
	for _, b := range payload[8:] {
		if b != 0 {
			return 0, fmt.Errorf("%w: non-zero padding", ErrBadLinkAck)
		}
	}
	return binary.BigEndian.Uint64(payload), nil
}

// linkAckCell returns a LINK_ACK cell for count cells read.
func linkAckCell(count uint64) []byte {
	cell := NewCell()
	cell[4] = byte(CmdLinkAck)
	binary.BigEndian.PutUint64(cell[circuit.CellHeaderLen:], count)
	return cell
}

// window is a channel's sending window. It does no I/O; the channel's
// winMu guards it.
type window struct {
	active  bool   // the peer acknowledges
	written uint64 // cells written (LINK_ACKs not counted)
	acked   uint64 // cells the peer has read
	size    int
	minRTT  time.Duration
	stamps  [maxWindow / ackEvery]time.Time // when cell k·ackEvery was written
}

func newWindow() window { return window{size: initialWindow} }

// open tells whether another cell may be written.
func (w *window) open() bool {
	return !w.active || w.written-w.acked < uint64(w.size)
}

// wrote counts a cell written at now.
func (w *window) wrote(now time.Time) {
	w.written++
	if w.written%ackEvery == 0 {
		w.stamps[(w.written/ackEvery)%uint64(len(w.stamps))] = now
	}
}

// onAck takes the peer's count, received at now, and adapts the size.
func (w *window) onAck(count uint64, now time.Time) error {
	if count < w.acked || count > w.written {
		return fmt.Errorf("%w: %d read of %d written, %d acknowledged before", ErrBadLinkAck, count, w.written, w.acked)
	}
	w.active = true
	w.acked = count
	if count%ackEvery != 0 || w.written-count >= uint64(len(w.stamps))*ackEvery {
		return nil // no stamp for it
	}
	rtt := now.Sub(w.stamps[(count/ackEvery)%uint64(len(w.stamps))])
	if rtt <= 0 {
		return nil
	}
	if w.minRTT == 0 || rtt < w.minRTT {
		w.minRTT = rtt
	}
	queued := float64(w.size) * (1 - float64(w.minRTT)/float64(rtt))
	switch {
	case queued < vegasLow:
		w.size = min(w.size+windowStep, maxWindow)
	case queued > vegasHigh:
		w.size = max(w.size-windowStep, minWindow)
	}
	return nil
}
