package netemu

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DelayFunc is the one-way delay of the link from node from to node to,
// nodes numbered in the order they were added. It must not change while
// the Forwarder runs.
type DelayFunc func(from, to int) time.Duration

// Constant is a DelayFunc of d on every link.
func Constant(d time.Duration) DelayFunc { return func(int, int) time.Duration { return d } }

// DefaultQueue is how many packets a link holds in flight before it drops:
// at 10 ms one way and 1500-byte packets, some 2 GB/s.
const DefaultQueue = 16384

// maxPacket is the largest packet a device read returns (an IPv4 packet's
// total length is 16 bits).
const maxPacket = 65535

// A Forwarder carries IPv4 packets between nodes' devices, each directed
// link after its own constant delay, in order. Add every node, then Run.
type Forwarder struct {
	delay DelayFunc
	queue int

	// set by Add before Run, read only afterwards
	ports  []port
	byAddr map[netip.Addr]int

	stats struct {
		forwarded, notIPv4, noRoute, overflow, writeErrors atomic.Uint64
	}
	pool sync.Pool // of *[]byte
}

// port is one node's device and the address that reaches it.
type port struct {
	addr netip.Addr
	dev  io.ReadWriteCloser
}

// packet is one packet on a link, and when it is due at the far end.
type packet struct {
	due time.Time
	b   *[]byte
}

// NewForwarder returns a Forwarder whose links delay by delay; queue
// packets fit on each link (0: DefaultQueue). It starts nothing.
func NewForwarder(delay DelayFunc, queue int) *Forwarder {
	if queue <= 0 {
		queue = DefaultQueue
	}
	f := &Forwarder{delay: delay, queue: queue, byAddr: map[netip.Addr]int{}}
	f.pool.New = func() any { b := make([]byte, 0, 2048); return &b }
	return f
}

// Add makes dev the device of a node that owns addr, and returns the
// node's number. Packets read from dev enter the network; packets to addr
// are written to dev. Run closes dev when it ends. Add must not be called
// once Run has started.
func (f *Forwarder) Add(addr netip.Addr, dev io.ReadWriteCloser) int {
	f.byAddr[addr] = len(f.ports)
	f.ports = append(f.ports, port{addr: addr, dev: dev})
	return len(f.ports) - 1
}

// Stats counts what a Forwarder did with the packets it read.
type Stats struct {
	Forwarded   uint64 // written to their destination's device
	NotIPv4     uint64 // dropped: not a whole IPv4 packet
	NoRoute     uint64 // dropped: no node owns the destination, or it is the sender
	Overflow    uint64 // dropped: the link's queue was full
	WriteErrors uint64 // dropped: the destination's device refused the write
}

// Stats returns the counts so far.
func (f *Forwarder) Stats() Stats {
	s := &f.stats
	return Stats{Forwarded: s.forwarded.Load(), NotIPv4: s.notIPv4.Load(), NoRoute: s.noRoute.Load(),
		Overflow: s.overflow.Load(), WriteErrors: s.writeErrors.Load()}
}

// Run forwards until ctx ends or a device fails to read, then closes
// every device, waits for its goroutines and returns; nil if ctx ended.
func (f *Forwarder) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(f.ports)
	links := make([][]chan packet, n)
	var wg sync.WaitGroup
	for from := range n {
		links[from] = make([]chan packet, n)
		for to := range n {
			if to == from {
				continue
			}
			q := make(chan packet, f.queue)
			links[from][to] = q
			wg.Go(func() { f.send(ctx, q, f.ports[to].dev) })
		}
	}
	var (
		readers  sync.WaitGroup
		failOnce sync.Once
		failed   error
	)
	for from := range n {
		readers.Go(func() {
			if err := f.read(ctx, from, links[from]); err != nil {
				failOnce.Do(func() { failed = err })
				cancel()
			}
		})
	}
	<-ctx.Done()
	for _, p := range f.ports {
		p.dev.Close()
	}
	readers.Wait()
	wg.Wait()
	return failed
}

// read reads node from's packets and queues each on its link.
func (f *Forwarder) read(ctx context.Context, from int, links []chan packet) error {
	buf := make([]byte, maxPacket)
	for {
		k, err := f.ports[from].dev.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("netemu: reading node %d's device: %w", from, err)
		}
		f.route(from, buf[:k], links)
	}
}

// route queues the packet p that node from sent on its link, stamped
// with when it is due, or counts why it is dropped.
func (f *Forwarder) route(from int, p []byte, links []chan packet) {
	now := time.Now()
	_, dst, ok := parseIPv4(p)
	if !ok {
		f.stats.notIPv4.Add(1)
		return
	}
	to, ok := f.byAddr[dst]
	if !ok || to == from {
		f.stats.noRoute.Add(1)
		return
	}
	b := f.pool.Get().(*[]byte)
	*b = append((*b)[:0], p...)
	select {
	case links[to] <- packet{due: now.Add(f.delay(from, to)), b: b}:
	default:
		f.stats.overflow.Add(1)
		f.pool.Put(b)
	}
}

// send writes a link's packets to dev, each once it is due. The link's
// delay is constant, so packets come due in the order they were queued.
func (f *Forwarder) send(ctx context.Context, q <-chan packet, dev io.Writer) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var p packet
		select {
		case p = <-q:
		case <-ctx.Done():
			return
		}
		if d := time.Until(p.due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		if _, err := dev.Write(*p.b); err != nil {
			f.stats.writeErrors.Add(1)
		} else {
			f.stats.forwarded.Add(1)
		}
		f.pool.Put(p.b)
	}
}
