package link

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/dht"
)

func newHost(t testing.TB) host.Host {
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: k})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// recorder is a Handler that keeps what it receives.
type recorder struct {
	mu      sync.Mutex
	cells   [][]byte
	got     chan []byte
	closed  chan error
	blocked atomic.Bool // while set, HandleCell waits on release
	release chan struct{}
}

func newRecorder() *recorder {
	return &recorder{got: make(chan []byte, 10000), closed: make(chan error, 1), release: make(chan struct{})}
}

func (r *recorder) HandleCell(c *Circ, cell []byte) {
	if r.blocked.Load() {
		<-r.release
	}
	cp := append([]byte(nil), cell...)
	Release(cell)
	r.got <- cp
}

func (r *recorder) CircuitClosed(c *Circ, err error) { r.closed <- err }

// pair returns a manager on a and one on b whose OnCreate accepts every
// circuit with a recorder, and reports the recorders through accepted.
func pair(t *testing.T) (*Manager, *Manager, chan *recorder) {
	a, b := newHost(t), newHost(t)
	accepted := make(chan *recorder, 100)
	mb := NewManager(b, Config{MaxQueue: 64, OnCreate: func(ch *Channel, id uint32) Handler {
		r := newRecorder()
		accepted <- r
		return r
	}})
	ma := NewManager(a, Config{MaxQueue: 64})
	mb.Start()
	ma.Start()
	t.Cleanup(func() { ma.Close(); mb.Close() })
	return ma, mb, accepted
}

func dialB(t testing.TB, ma *Manager, mb *Manager) *Channel {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := ma.Channel(ctx, peer.AddrInfo{ID: mb.Host().ID(), Addrs: mb.Host().Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func payloadN(n int) []byte {
	p := make([]byte, 8)
	binary.BigEndian.PutUint64(p, uint64(n))
	return p
}

func TestManyCircuitsShareOneChannel(t *testing.T) {
	ma, mb, accepted := pair(t)
	ch := dialB(t, ma, mb)
	const circs, cells = 20, 50
	ctx := context.Background()
	for i := range circs {
		c, err := ch.Open(newRecorder())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(ctx, circuit.CmdCreate, payloadN(i)); err != nil {
			t.Fatal(err)
		}
		r := <-accepted
		first := <-r.got
		if first[4] != byte(circuit.CmdCreate) || binary.BigEndian.Uint32(first) != c.ID() {
			t.Fatal("first cell is not the CREATE")
		}
		for j := range cells {
			c.Send(ctx, circuit.CmdRelay, payloadN(j))
		}
		for j := range cells {
			got := <-r.got
			if len(got) != circuit.CellSize || binary.BigEndian.Uint64(got[5:]) != uint64(j) {
				t.Fatalf("circuit %d: cell %d out of order or damaged", i, j)
			}
		}
	}
	if ma.Channels() != 1 || mb.Channels() != 1 {
		t.Fatalf("%d and %d channels, want one each", ma.Channels(), mb.Channels())
	}
	// Asking again returns the same channel.
	if dialB(t, ma, mb) != ch {
		t.Fatal("second Channel call opened a new channel")
	}
}

// A paused (or blocked) circuit does not stall another on the channel.
func TestPausedCircuitDoesNotStallOthers(t *testing.T) {
	ma, mb, accepted := pair(t)
	ch := dialB(t, ma, mb)
	ctx := context.Background()
	slow, _ := ch.Open(newRecorder())
	fast, _ := ch.Open(newRecorder())
	slow.Send(ctx, circuit.CmdCreate, nil)
	rs := <-accepted
	<-rs.got
	fast.Send(ctx, circuit.CmdCreate, nil)
	rf := <-accepted
	<-rf.got

	rs.blocked.Store(true) // the slow circuit's handler stops
	for i := range 30 {
		slow.Send(ctx, circuit.CmdRelay, payloadN(i))
	}
	// The fast circuit moves 200 cells in windows of 50 (a sender keeps
	// within the receiver's queue, as flow control makes it).
	for w := range 4 {
		for i := range 50 {
			fast.Send(ctx, circuit.CmdRelay, payloadN(w*50+i))
		}
		for i := range 50 {
			select {
			case <-rf.got:
			case err := <-rf.closed:
				t.Fatalf("fast circuit closed: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatalf("fast circuit stalled at cell %d", w*50+i)
			}
		}
	}
	close(rs.release)
	for range 30 {
		<-rs.got
	}
}

func TestPauseResume(t *testing.T) {
	ma, mb, _ := pair(t)
	ch := dialB(t, ma, mb)
	// Cells flow b → a on a circuit a opened and paused.
	ra := newRecorder()
	c, _ := ch.Open(ra)
	c.Pause()
	ctx := context.Background()
	c.Send(ctx, circuit.CmdCreate, nil)
	var bc *Circ
	deadline := time.Now().Add(10 * time.Second)
	for bc == nil && time.Now().Before(deadline) {
		mb.mu.Lock()
		for other := range mb.all {
			other.mu.Lock()
			bc = other.circs[c.ID()]
			other.mu.Unlock()
		}
		mb.mu.Unlock()
		runtime.Gosched()
	}
	if bc == nil {
		t.Fatal("remote circuit never registered")
	}
	for i := range 10 {
		bc.Send(ctx, circuit.CmdRelay, payloadN(i))
	}
	for c.Queued() < 10 {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-ra.got:
		t.Fatal("a paused circuit delivered a cell")
	default:
	}
	c.Resume()
	for i := range 10 {
		if got := <-ra.got; binary.BigEndian.Uint64(got[5:]) != uint64(i) {
			t.Fatal("order broken across pause")
		}
	}
}

// A sender that overruns a circuit's queue loses that circuit only.
func TestQueueOverflowClosesOnlyThatCircuit(t *testing.T) {
	ma, mb, accepted := pair(t)
	ch := dialB(t, ma, mb)
	ctx := context.Background()
	bad, _ := ch.Open(newRecorder())
	good, _ := ch.Open(newRecorder())
	bad.Send(ctx, circuit.CmdCreate, nil)
	rb := <-accepted
	rb.blocked.Store(true)
	good.Send(ctx, circuit.CmdCreate, nil)
	rg := <-accepted
	<-rg.got
	for i := range 200 { // queue holds 64
		bad.Send(ctx, circuit.CmdRelay, payloadN(i))
	}
	select {
	case err := <-rb.closed:
		if !errors.Is(err, ErrQueueFull) {
			t.Fatalf("closed with %v, want ErrQueueFull", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("overflowing circuit not closed")
	}
	close(rb.release)
	good.Send(ctx, circuit.CmdRelay, payloadN(1))
	if got := <-rg.got; binary.BigEndian.Uint64(got[5:]) != 1 {
		t.Fatal("good circuit damaged")
	}
}

// When the peer goes away, every circuit on the channel learns it.
func TestChannelCloseReachesEveryCircuit(t *testing.T) {
	ma, mb, _ := pair(t)
	ch := dialB(t, ma, mb)
	var recs []*recorder
	for range 5 {
		r := newRecorder()
		if _, err := ch.Open(r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	mb.Host().Close()
	for i, r := range recs {
		select {
		case err := <-r.closed:
			if !errors.Is(err, ErrChannelClosed) {
				t.Fatalf("circuit %d: %v", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("circuit %d never told", i)
		}
	}
	if _, err := ch.Open(newRecorder()); err == nil {
		t.Fatal("opened a circuit on a closed channel")
	}
}

// Cells with the wrong parity or for unknown circuits are dropped, and the
// CREATE handler is not called for them.
func TestWrongParityCreateIgnored(t *testing.T) {
	ma, mb, accepted := pair(t)
	ch := dialB(t, ma, mb)
	ctx := context.Background()
	// a is the initiator: IDs without the initiator bit are b's to create.
	if err := ch.SendRaw(ctx, 5, circuit.CmdCreate, nil); err != nil {
		t.Fatal(err)
	}
	ch.SendRaw(ctx, 0, circuit.CmdCreate, nil)
	c, _ := ch.Open(newRecorder())
	c.Send(ctx, circuit.CmdCreate, nil)
	r := <-accepted
	if got := <-r.got; binary.BigEndian.Uint32(got) != c.ID() {
		t.Fatal("a wrong-parity CREATE was accepted")
	}
	select {
	case <-accepted:
		t.Fatal("extra circuit accepted")
	default:
	}
}

func TestManagerCloseEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		a, b := newHost(t), newHost(t)
		ma, mb := NewManager(a, Config{}), NewManager(b, Config{OnCreate: func(*Channel, uint32) Handler { return newRecorder() }})
		ma.Start()
		mb.Start()
		ch := dialB(t, ma, mb)
		c, _ := ch.Open(newRecorder())
		c.Send(context.Background(), circuit.CmdCreate, nil)
		ma.Close()
		mb.Close()
		a.Close()
		b.Close()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+5 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left over (before %d):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
