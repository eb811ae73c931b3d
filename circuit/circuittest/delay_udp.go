package circuittest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// udpIdleTimeout ends a client's session after this long without traffic.
	udpIdleTimeout = 2 * time.Minute
	// readBatch is the most datagrams read per system call.
	readBatch = 32
)

// DelayUDP is a UDP forwarder on 127.0.0.1 that delays every datagram by a
// one-way delay in each direction, in order, with optional loss and
// bandwidth limit — enough to put a QUIC endpoint "far away". Each client
// address gets its own socket towards the target, so the target sees one
// peer per client. It starts forwarding when created; Close stops it and
// waits for its goroutines.
type DelayUDP struct {
	target *net.UDPAddr
	delay  time.Duration
	cfg    delayConfig
	pc     *net.UDPConn
	bc     batchConn // pc, a batch at a time
	stats  delayCounters
	wg     sync.WaitGroup
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex // guards sessions and nextLine
	sessions map[netip.AddrPort]*udpSession
	nextLine uint64 // stream number for each line's loss generator
}

// udpSession is one client address and its socket towards the target.
type udpSession struct {
	up       *net.UDPConn
	ubc      batchConn  // up, a batch at a time
	toTarget *delayLine // fed by DelayUDP.readClients
	toClient *delayLine // fed by readTarget
	lastSeen atomic.Int64
	stop     chan struct{} // closed when the session ends
}

func (s *udpSession) close() {
	close(s.stop)
	s.up.Close()
}

// NewDelayUDP listens on 127.0.0.1:0 and forwards datagrams to target
// ("host:port") with oneWay delay in each direction.
func NewDelayUDP(target string, oneWay time.Duration, opts ...DelayOption) (*DelayUDP, error) {
	if oneWay < 0 {
		return nil, errors.New("circuittest: negative delay")
	}
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("circuittest: delay forwarder target: %w", err)
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("circuittest: delay forwarder: %w", err)
	}
	setBuffers(pc)
	d := &DelayUDP{
		target: taddr, delay: oneWay, cfg: newDelayConfig(opts), pc: pc, bc: newBatchConn(pc),
		done: make(chan struct{}), sessions: map[netip.AddrPort]*udpSession{},
	}
	d.wg.Go(d.readClients)
	d.wg.Go(d.expire)
	return d, nil
}

// Addr is the address clients send to.
func (d *DelayUDP) Addr() net.Addr { return d.pc.LocalAddr() }

// AddrPort is Addr as a netip.AddrPort.
func (d *DelayUDP) AddrPort() netip.AddrPort { return d.pc.LocalAddr().(*net.UDPAddr).AddrPort() }

// Stats reports datagrams forwarded and dropped so far.
func (d *DelayUDP) Stats() DelayStats { return d.stats.stats() }

// Close stops the forwarder, drops datagrams still in flight and waits for
// its goroutines. It is idempotent.
func (d *DelayUDP) Close() error {
	d.once.Do(func() {
		close(d.done)
		d.pc.Close()
		d.mu.Lock()
		for _, s := range d.sessions {
			s.close()
		}
		d.mu.Unlock()
	})
	d.wg.Wait()
	return nil
}

func setBuffers(c *net.UDPConn) {
	c.SetReadBuffer(4 << 20)
	c.SetWriteBuffer(4 << 20)
}

// readClients reads datagrams from clients and puts them on their
// session's line towards the target.
func (d *DelayUDP) readClients() {
	r := newBatchReader(d.bc, readBatch)
	for {
		ms, err := r.read()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		for _, m := range ms {
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			if s := d.session(ua.AddrPort()); s != nil {
				s.lastSeen.Store(time.Now().UnixNano())
				s.toTarget.offer(append([]byte(nil), m.Buffers[0][:m.N]...))
			}
		}
	}
}

// session returns the session of client, creating it (and its goroutines)
// on first contact; nil if closing or the target is unreachable.
func (d *DelayUDP) session(client netip.AddrPort) *udpSession {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.sessions[client]; ok {
		return s
	}
	select {
	case <-d.done:
		return nil
	default:
	}
	up, err := net.DialUDP("udp", nil, d.target)
	if err != nil {
		return nil
	}
	setBuffers(up)
	s := &udpSession{up: up, ubc: newBatchConn(up), stop: make(chan struct{})}
	s.toTarget = newDelayLine(d.delay, d.cfg, d.nextLine, &d.stats, s.stop)
	s.toClient = newDelayLine(d.delay, d.cfg, d.nextLine+1, &d.stats, s.stop)
	d.nextLine += 2
	s.lastSeen.Store(time.Now().UnixNano())
	d.sessions[client] = s
	caddr := net.UDPAddrFromAddrPort(client)
	d.wg.Go(func() { s.toTarget.run(func(b []item) error { writeBatch(s.ubc, b, nil); return nil }) })
	d.wg.Go(func() { s.toClient.run(func(b []item) error { writeBatch(d.bc, b, caddr); return nil }) })
	d.wg.Go(func() { d.readTarget(s) })
	return s
}

// readTarget reads the target's answers to one client.
// Errors other than a closed socket (e.g. ICMP port unreachable) are
// ignored: the target may come back.
func (d *DelayUDP) readTarget(s *udpSession) {
	r := newBatchReader(s.ubc, readBatch)
	for {
		ms, err := r.read()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if len(ms) > 0 {
			s.lastSeen.Store(time.Now().UnixNano())
		}
		for _, m := range ms {
			s.toClient.offer(append([]byte(nil), m.Buffers[0][:m.N]...))
		}
	}
}

// expire ends sessions idle for udpIdleTimeout, dropping what they still
// hold; a returning client gets a new session.
func (d *DelayUDP) expire() {
	t := time.NewTicker(udpIdleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-d.done:
			return
		case now := <-t.C:
			d.expireBefore(now.Add(-udpIdleTimeout).UnixNano())
		}
	}
}

func (d *DelayUDP) expireBefore(cutoff int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, s := range d.sessions {
		if s.lastSeen.Load() < cutoff {
			s.close()
			delete(d.sessions, k)
		}
	}
}
