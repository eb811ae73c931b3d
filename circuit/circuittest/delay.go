// Package circuittest holds helpers for tests of circuits: among them
// delaying forwarders that emulate wide-area links in user space, since
// the test machines' kernels have no netem qdisc.
package circuittest

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// DelayOption configures a delaying forwarder.
type DelayOption func(*delayConfig)

type delayConfig struct {
	loss       float64 // UDP only: probability of dropping a datagram
	bandwidth  int64   // bytes per second per direction; 0 = unlimited
	queueBytes int     // bytes waiting per direction before back-pressure or drop
	seed       uint64
}

// Defaults for the forwarders.
const (
	DefaultQueueBytes = 8 << 20 // per direction
	queuePackets      = 8192    // per direction: the most items in flight
	maxDatagram       = 64 << 10
	tcpChunk          = 32 << 10
)

func newDelayConfig(opts []DelayOption) delayConfig {
	c := delayConfig{queueBytes: DefaultQueueBytes, seed: 1}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithLoss drops each UDP datagram with probability p (0 ≤ p ≤ 1), in each
// direction. TCP forwarders ignore it: TCP is lossless to its users.
func WithLoss(p float64) DelayOption {
	return func(c *delayConfig) { c.loss = min(max(p, 0), 1) }
}

// WithBandwidth limits each direction to bytesPerSecond: a packet leaves
// the emulated link's queue only after the packets before it have been
// serialised at that rate, then travels for the one-way delay.
func WithBandwidth(bytesPerSecond int64) DelayOption {
	return func(c *delayConfig) { c.bandwidth = max(bytesPerSecond, 0) }
}

// WithQueueBytes bounds the bytes waiting in each direction (in flight or
// queued behind the bandwidth limit). Past it a UDP forwarder drops, as a
// router's tail drop does, and a TCP forwarder stops reading.
func WithQueueBytes(n int) DelayOption {
	return func(c *delayConfig) {
		if n > 0 {
			c.queueBytes = n
		}
	}
}

// WithSeed seeds the loss decisions, for reproducible tests.
func WithSeed(seed uint64) DelayOption {
	return func(c *delayConfig) { c.seed = seed }
}

// DelayStats counts what a forwarder did, over both directions.
type DelayStats struct {
	Forwarded uint64 // datagrams or TCP chunks delivered
	Dropped   uint64 // datagrams dropped by loss or a full queue
}

type delayCounters struct{ forwarded, dropped atomic.Uint64 }

func (c *delayCounters) stats() DelayStats {
	return DelayStats{Forwarded: c.forwarded.Load(), Dropped: c.dropped.Load()}
}

// item is one datagram or chunk on a delay line; eof marks the end of a
// TCP direction (its FIN), delivered after the data before it.
type item struct {
	due time.Time
	b   []byte
	eof bool
}

// delayLine is one direction of an emulated link: items are stamped with
// their delivery time when they enter and a single sender goroutine
// delivers them in order, sleeping only while the oldest is not yet due.
// Since every item waits the same delay (plus its serialisation behind the
// bandwidth limit), arrival order is delivery order and a FIFO is a
// timestamp schedule: at any rate, items already due go out back to back.
type delayLine struct {
	delay time.Duration
	cfg   delayConfig
	q     chan item
	stats *delayCounters
	done  chan struct{} // closed to stop the sender

	// Owned by the single goroutine that calls admit.
	rng      *rand.Rand
	linkFree time.Time // when the emulated link finishes serialising

	queued atomic.Int64  // bytes admitted and not yet delivered
	room   chan struct{} // signalled when queued bytes drop
}

func newDelayLine(delay time.Duration, cfg delayConfig, stream uint64, stats *delayCounters, done chan struct{}) *delayLine {
	return &delayLine{
		delay: delay,
		cfg:   cfg,
		q:     make(chan item, queuePackets),
		stats: stats,
		done:  done,
		rng:   rand.New(rand.NewPCG(cfg.seed, stream)),
		room:  make(chan struct{}, 1),
	}
}

// schedule stamps an item of n bytes arriving now with its delivery time.
func (l *delayLine) schedule(now time.Time, n int) time.Time {
	depart := now
	if l.cfg.bandwidth > 0 {
		depart = later(now, l.linkFree).Add(time.Duration(int64(n) * int64(time.Second) / l.cfg.bandwidth))
		l.linkFree = depart
	}
	return depart.Add(l.delay)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// offer admits a datagram or drops it (loss, full queue). It never blocks.
func (l *delayLine) offer(b []byte) {
	if l.cfg.loss > 0 && l.rng.Float64() < l.cfg.loss {
		l.stats.dropped.Add(1)
		return
	}
	if l.queued.Load()+int64(len(b)) > int64(l.cfg.queueBytes) {
		l.stats.dropped.Add(1)
		return
	}
	l.queued.Add(int64(len(b)))
	select {
	case l.q <- item{due: l.schedule(time.Now(), len(b)), b: b}:
	default:
		l.queued.Add(-int64(len(b)))
		l.stats.dropped.Add(1)
	}
}

// push admits a TCP chunk (or the EOF marker), waiting for room; it
// reports false when the line is shutting down.
func (l *delayLine) push(b []byte, eof bool) bool {
	for l.queued.Load() > 0 && l.queued.Load()+int64(len(b)) > int64(l.cfg.queueBytes) {
		select {
		case <-l.room:
		case <-l.done:
			return false
		}
	}
	l.queued.Add(int64(len(b)))
	select {
	case l.q <- item{due: l.schedule(time.Now(), len(b)), b: b, eof: eof}:
		return true
	case <-l.done:
		return false
	}
}

// maxBatch is the most items handed to deliver at once.
const maxBatch = 64

// run delivers items in order at their due times until the line is
// closed, the EOF marker has been delivered or deliver fails. Items that
// are due together are delivered as one batch (one sendmmsg or writev).
func (l *delayLine) run(deliver func([]item) error) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	batch := make([]item, 0, maxBatch)
	var next *item // taken from the queue but not yet due
	for {
		head, ok := l.head(next)
		if !ok || !l.wait(timer, head.due) {
			return
		}
		batch, next = l.collect(append(batch[:0], head))
		err := deliver(batch)
		l.account(batch)
		if err != nil || batch[len(batch)-1].eof {
			return
		}
	}
}

// head returns the held-back item, or waits for the next one.
func (l *delayLine) head(next *item) (item, bool) {
	if next != nil {
		return *next, true
	}
	select {
	case it := <-l.q:
		return it, true
	case <-l.done:
		return item{}, false
	}
}

// wait sleeps until due; false if the line closed meanwhile.
func (l *delayLine) wait(timer *time.Timer, due time.Time) bool {
	d := time.Until(due)
	if d <= 0 {
		return true
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-l.done:
		return false
	}
}

// collect appends the queued items that are already due, up to maxBatch
// or an EOF marker; the first one not yet due is returned as next.
func (l *delayLine) collect(batch []item) ([]item, *item) {
	now := time.Now()
	for len(batch) < maxBatch && !batch[len(batch)-1].eof {
		select {
		case it := <-l.q:
			if it.due.After(now) {
				return batch, &it
			}
			batch = append(batch, it)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// account releases a delivered batch's bytes and counts its items.
func (l *delayLine) account(batch []item) {
	n := 0
	for _, it := range batch {
		n += len(it.b)
		if !it.eof {
			l.stats.forwarded.Add(1)
		}
	}
	l.release(n)
}

func (l *delayLine) release(n int) {
	l.queued.Add(-int64(n))
	select {
	case l.room <- struct{}{}:
	default:
	}
}
