package link

import (
	"errors"
	"sync/atomic"
	"time"
)

// Defaults of a manager's flood bounds (Config).
//
// Each circuit's inbound queue is bounded (MaxQueue), but a peer that
// stops reading its channel, or reads it a cell at a time, makes the
// relay queue the cells of every circuit it holds toward that peer; with
// thousands of circuits per-circuit bounds add up to gigabytes (Tor's
// "sniper attack"). So the queues of all circuits share one budget, and a
// channel whose peer stops reading is closed.
const (
	// DefaultMaxQueuedCells bounds the cells waiting in all inbound
	// circuit queues of one manager: 65,536 cells, 80 MiB. Honest queues
	// drain as fast as cells arrive and stay far below it.
	DefaultMaxQueuedCells = 1 << 16
	// DefaultWriteTimeout is how long a write of cells to the stream may
	// make no progress before the channel is closed. A peer's reader
	// never blocks on its circuits, so a write that stalls this long means
	// the peer does not read.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxChannelsPerPeer bounds the channels one peer may open to
	// this node. An honest peer needs one (a second while it replaces a
	// broken one); each channel costs two goroutines and 60 KiB of
	// buffers.
	DefaultMaxChannelsPerPeer = 8
)

// ErrOverBudget closes the circuit with the oldest queued cell when the
// queues of all circuits together exceed Config.MaxQueuedCells.
var ErrOverBudget = errors.New("link: inbound queues over budget")

// Stats counts what a manager refused or dropped, for flood tests and
// metrics.
type Stats struct {
	QueuedCells     int64  // cells waiting in inbound circuit queues now
	DroppedCells    uint64 // cells for no circuit, or not allowed to create one
	Overflows       uint64 // circuits closed for overrunning their queue
	Shed            uint64 // circuits closed because all queues were over budget
	RefusedChannels uint64 // inbound channels over a peer's limit
	StalledChannels uint64 // channels closed because the peer stopped reading
	PaddingSent     uint64 // link PADDING cells sent
	PaddingReceived uint64 // link PADDING cells received and dropped
}

// counters are a manager's Stats, shared with its channels.
type counters struct {
	queued          atomic.Int64
	dropped         atomic.Uint64
	overflows       atomic.Uint64
	shed            atomic.Uint64
	refusedChannels atomic.Uint64
	stalled         atomic.Uint64
	paddingSent     atomic.Uint64
	paddingReceived atomic.Uint64
}

// Stats returns the manager's counts.
func (m *Manager) Stats() Stats {
	c := &m.counts
	return Stats{
		QueuedCells: c.queued.Load(), DroppedCells: c.dropped.Load(),
		Overflows: c.overflows.Load(), Shed: c.shed.Load(),
		RefusedChannels: c.refusedChannels.Load(), StalledChannels: c.stalled.Load(),
		PaddingSent: c.paddingSent.Load(), PaddingReceived: c.paddingReceived.Load(),
	}
}

// overBudget reports whether the inbound queues hold more than allowed.
func (m *Manager) overBudget() bool {
	return m.counts.queued.Load() > int64(m.cfg.MaxQueuedCells)
}

// shed closes the circuits with the oldest queued cells until the queues
// are within budget (as Tor's out-of-memory handler does). The oldest
// cell is at the head of a queue nobody takes from (a stalled next
// channel, a paused circuit) or of one filled faster than it drains (a
// flood); a busy honest circuit's cells move on and stay young, however
// many it has. Only one shed runs at a time; others return at once (the
// running one brings the total down).
func (m *Manager) shed() {
	if !m.shedding.TryLock() {
		return
	}
	defer m.shedding.Unlock()
	for m.overBudget() {
		victim := m.oldestQueue()
		if victim == nil {
			return
		}
		m.counts.shed.Add(1) // before its handler can learn of it
		victim.fail(ErrOverBudget)
	}
}

// oldestQueue finds the circuit whose oldest queued cell is the oldest of
// all. It walks every circuit, which is fine for an event that floods
// cause.
func (m *Manager) oldestQueue() *Circ {
	m.mu.Lock()
	chans := make([]*Channel, 0, len(m.all))
	for ch := range m.all {
		chans = append(chans, ch)
	}
	m.mu.Unlock()
	var victim *Circ
	var oldest int64
	for _, ch := range chans {
		for _, c := range ch.circuits() {
			if n, at := c.oldest(); n > 0 && (victim == nil || at < oldest) {
				victim, oldest = c, at
			}
		}
	}
	return victim
}
