package router_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/router"
)

// A relay knows only the previous and next hop of each circuit: the exit
// sees the middle relay as its previous hop, never the client.
func TestRelaysKnowOnlyNeighbours(t *testing.T) {
	port, _ := dataServer(t)
	tn := newTestNet(t, 3, nil)
	c := tn.build(t, 0, 1, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := c.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clientID := tn.client.Host().ID()
	want := []router.Knowledge{
		{Prev: clientID, Next: tn.Relays[1].Host.ID()},
		{Prev: tn.Relays[0].Host.ID(), Next: tn.Relays[2].Host.ID()},
		{Prev: tn.Relays[1].Host.ID(), Next: ""},
	}
	for i, r := range tn.Relays {
		got := r.Router.Circuits()
		if len(got) != 1 || got[0] != want[i] {
			t.Fatalf("relay %d knows %+v, want %+v", i, got, want[i])
		}
		for _, k := range got {
			if i > 0 && (k.Prev == clientID || k.Next == clientID) {
				t.Fatalf("relay %d learned the client's peer ID", i)
			}
		}
	}
}

func endReason(err error) circuit.EndReason {
	var e *client.EndError
	if errors.As(err, &e) {
		return e.Reason
	}
	return 0
}

// An exit that may not reach private addresses refuses them after
// resolution, including names that resolve to them.
func TestExitPolicyRefusals(t *testing.T) {
	tn := newTestNet(t, 2, func(i int, c *router.Config) {
		if i == 1 {
			pol, err := router.ParseExitPolicy([]string{"accept *:*"})
			if err != nil {
				t.Fatal(err)
			}
			c.Exit = pol
		}
	})
	c := tn.build(t, 0, 1)
	cases := []struct {
		host string
		want circuit.EndReason
	}{
		{"127.0.0.1", circuit.EndExitPolicy},
		{"10.0.0.1", circuit.EndExitPolicy},
		{"localhost", circuit.EndExitPolicy},               // resolves to loopback
		{"10.0.0.1.nip.invalid", circuit.EndResolveFailed}, // does not resolve
	}
	for _, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := c.Dial(ctx, tc.host, 80)
		cancel()
		if got := endReason(err); got != tc.want {
			t.Errorf("%s: got %v (%v), want %v", tc.host, got, err, tc.want)
		}
	}
	// A middle relay that is not an exit refuses streams too.
	tn2 := newTestNet(t, 1, func(i int, c *router.Config) { c.Exit = nil })
	c2 := tn2.build(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c2.Dial(ctx, "127.0.0.1", 80); endReason(err) != circuit.EndExitPolicy {
		t.Fatalf("non-exit: got %v", err)
	}
}

// A refused connect is reported as such.
func TestConnectRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	tn := newTestNet(t, 1, nil)
	c := tn.build(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Dial(ctx, "127.0.0.1", port); endReason(err) != circuit.EndConnectRefused {
		t.Fatalf("got %v, want connect-refused", err)
	}
}

// When a relay dies mid-transfer, the client's stream fails promptly with
// an error and other circuits go on.
func TestRelayDeathFailsStreamsPromptly(t *testing.T) {
	port, sum := dataServer(t)
	tn := newTestNet(t, 4, nil)
	doomed := tn.build(t, 0, 1, 2)
	other := tn.build(t, 0, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := doomed.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("GET /bytes/1000000000 HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	tn.Relays[1].Stop()
	start := time.Now()
	s.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if _, err = s.Read(buf); err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stream ended with %v, want an error", err)
	}
	t.Logf("stream failed %v after the relay died: %v", time.Since(start).Round(time.Millisecond), err)
	select {
	case <-doomed.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("circuit not closed")
	}
	s2, err := other.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := get(s2, 1<<20); err != nil || got != sum(1<<20) {
		t.Fatalf("unaffected circuit: %v", err)
	}
}

// rawHandler receives the cells of a circuit built by hand.
type rawHandler struct{ cells chan []byte }

func (h rawHandler) HandleCell(c *link.Circ, cell []byte) {
	h.cells <- append([]byte(nil), cell...)
	link.Release(cell)
}
func (h rawHandler) CircuitClosed(*link.Circ, error) {}

// A cell no hop recognizes (tampered, or garbage) destroys its circuit
// only; the relays keep serving the others on the same channel.
func TestBadCellDestroysOneCircuit(t *testing.T) {
	port, sum := dataServer(t)
	tn := newTestNet(t, 2, nil)
	good := tn.build(t, 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Build a second circuit by hand on the same channel, then send a
	// RELAY cell of random bytes: no layer recognizes it, so the last hop
	// destroys the circuit.
	path := tn.Path(0, 1)
	specs := []circuit.HopSpec{
		{PeerID: []byte(path[0].Peer.ID), OnionKey: path[0].OnionKey},
		{PeerID: []byte(path[1].Peer.ID), OnionKey: path[1].OnionKey},
	}
	b, create, err := circuit.NewBuild(rand.Reader, time.Now(), specs)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := tn.client.Channel(ctx, path[0].Peer)
	if err != nil {
		t.Fatal(err)
	}
	h := rawHandler{cells: make(chan []byte, 10)}
	lc, err := ch.Open(h)
	if err != nil {
		t.Fatal(err)
	}
	lc.Send(ctx, circuit.CmdCreate, create)
	created := <-h.cells
	if _, err := b.Finish(created[circuit.CellHeaderLen:]); err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, circuit.PayloadLen)
	rand.Read(garbage)
	lc.Send(ctx, circuit.CmdRelay, garbage)
	select {
	case cell := <-h.cells:
		if circuit.Command(cell[4]) != circuit.CmdDestroy {
			t.Fatalf("got %v, want DESTROY", circuit.Command(cell[4]))
		}
		why, _ := circuit.ParseDestroy(cell[circuit.CellHeaderLen:])
		t.Logf("destroyed: %v", why)
	case <-time.After(10 * time.Second):
		t.Fatal("garbage cell did not destroy its circuit")
	}

	s, err := good.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := get(s, 100000); err != nil || got != sum(100000) {
		t.Fatalf("good circuit: %v", err)
	}
	if n := tn.client.Channels(); n != 1 {
		t.Fatalf("%d channels, want the one both circuits share", n)
	}
}

// Building to a relay the first hop cannot find fails with a DESTROY,
// not a hang.
func TestUnknownNextHop(t *testing.T) {
	tn := newTestNet(t, 2, nil)
	path := tn.Path(0, 1)
	ghost := newHost(t)
	ghost.Close()
	path[1].Peer = peer.AddrInfo{ID: ghost.ID()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := client.Build(ctx, tn.client, path)
	var de *circuit.DestroyedError
	if !errors.As(err, &de) && !errors.Is(err, client.ErrBuildFailed) {
		t.Fatalf("got %v", err)
	}
}

// Closing everything leaves no goroutines behind.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("network", func(t *testing.T) { // its cleanups run before the count
		port, _ := dataServer(t)
		tn := newTestNet(t, 3, nil)
		c := tn.build(t, 0, 1, 2)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s, err := c.Dial(ctx, "127.0.0.1", port)
		if err != nil {
			t.Fatal(err)
		}
		get(s, 1000)
		s.Close()
		c.Close()
		tn.client.Close()
		for _, r := range tn.Relays {
			r.Stop()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before+10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+10 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines left (before %d)\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// A circuit that moves no cell for the idle timeout is destroyed; one in
// use is not.
func TestIdleCircuitsReaped(t *testing.T) {
	tn := newTestNet(t, 1, func(i int, c *router.Config) { c.IdleTimeout = 300 * time.Millisecond })
	idle := tn.build(t, 0)
	busy := tn.build(t, 0)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				busy.SendTo(context.Background(), 0, circuit.RelayCell{Command: circuit.RelayDrop})
			}
		}
	}()
	select {
	case <-idle.Done():
		var de *circuit.DestroyedError
		if !errors.As(idle.Err(), &de) || de.Reason != circuit.DestroyTimeout {
			t.Fatalf("idle circuit closed with %v, want a timeout DESTROY", idle.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("idle circuit not reaped")
	}
	if busy.Err() != nil {
		t.Fatalf("busy circuit closed: %v", busy.Err())
	}
}

// An exit stream that moves no data for the stream idle timeout is ended
// with reason timeout; the circuit stays up.
func TestIdleStreamsEnded(t *testing.T) {
	port := silentServer(t)
	tn := newTestNet(t, 1, func(_ int, c *router.Config) { c.StreamIdleTimeout = 200 * time.Millisecond })
	c := tn.build(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := c.Dial(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = s.Read(make([]byte, 1))
	if endReason(err) != circuit.EndTimeout {
		t.Fatalf("idle stream: got %v, want END timeout", err)
	}
	if c.Err() != nil {
		t.Fatalf("the circuit closed too: %v", c.Err())
	}
}
