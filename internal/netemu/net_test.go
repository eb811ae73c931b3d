package netemu

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/internal/nstest"
)

// requireNetns skips the test unless it can build namespaces with TUN
// devices.
func requireNetns(t *testing.T) {
	t.Helper()
	nstest.Require(t, nstest.Needs{Files: []string{"/dev/net/tun"}})
}

// startNet creates a Net of the named nodes and runs it until the test
// ends, then checks that its namespaces are gone.
func startNet(t *testing.T, delay DelayFunc, nodes ...string) *Net {
	t.Helper()
	prefix := fmt.Sprintf("oe%d", os.Getpid()%10000000)
	n, err := Create(Config{Prefix: prefix, Nodes: nodes, Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), prefix+"-") {
			t.Errorf("namespaces left behind:\n%s", out)
		}
	})
	return n
}

// TestNetTCPAndUDP carries a TCP stream and a UDP datagram between two
// namespaces through the Forwarder, and checks that nothing is routed
// beyond the Net.
func TestNetTCPAndUDP(t *testing.T) {
	requireNetns(t)
	n := startNet(t, Constant(5*time.Millisecond), "a", "b")
	b := n.Nodes()[1]
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	l, err := n.Listen(1, "tcp4", b.Addr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := n.Dial(ctx, 0, "tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != n.Nodes()[0].Addr.String() {
		t.Errorf("connection from %s, want node a's address %s", got, n.Nodes()[0].Addr)
	}
	msg := bytes.Repeat([]byte("obol"), 64<<10) // several windows' worth
	go c.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("TCP echo: %v (equal %v)", err, bytes.Equal(got, msg))
	}

	pc, err := n.ListenPacket(1, "udp4", b.Addr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc, err := n.Dial(ctx, 0, "udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("datagram")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	pc.SetReadDeadline(time.Now().Add(15 * time.Second))
	k, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "datagram" {
		t.Fatalf("UDP: got %q, %v", buf[:k], err)
	}

	if _, err := n.Dial(ctx, 0, "tcp4", "192.0.2.1:80"); err == nil {
		t.Error("a node reached an address outside the Net")
	}
	if s := n.Stats(); s.Forwarded == 0 || s.Overflow != 0 || s.WriteErrors != 0 {
		t.Errorf("stats %+v: want packets forwarded, none lost", s)
	}
}

// BenchmarkNetTCP moves 32 MiB over one TCP connection between two
// namespaces through the Forwarder, at a one-way delay of 0 and 40 ms.
func BenchmarkNetTCP(b *testing.B) {
	for _, d := range []time.Duration{0, 40 * time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%v", d), func(b *testing.B) {
			requireNetnsB(b)
			n, stop := benchNet(b, Constant(d))
			defer stop()
			const size = 32 << 20
			l, err := n.Listen(1, "tcp4", n.Nodes()[1].Addr.String()+":0")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() { defer c.Close(); io.CopyN(c, zeros{}, size) }()
				}
			}()
			b.SetBytes(size)
			for b.Loop() {
				c, err := n.Dial(b.Context(), 0, "tcp4", l.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				if k, err := io.Copy(io.Discard, c); err != nil || k != size {
					b.Fatalf("got %d bytes, %v", k, err)
				}
				c.Close()
			}
			b.ReportMetric(float64(n.Stats().Overflow), "overflow")
		})
	}
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// requireNetnsB skips the benchmark where it cannot build namespaces.
func requireNetnsB(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("network-namespace benchmark needs root (ip netns); skipped")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		b.Skipf("no /dev/net/tun: %v", err)
	}
}

// benchNet creates and runs a Net of two nodes; stop removes it.
func benchNet(b *testing.B, delay DelayFunc) (*Net, func()) {
	n, err := Create(Config{Prefix: fmt.Sprintf("oe%d", os.Getpid()%10000000), Nodes: []string{"a", "b"}, Delay: delay})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	return n, func() { cancel(); <-done; n.Close() }
}

// TestNetCommandOutlivesNamespaceCalls starts a process in a node and
// then makes many sockets inside nodes, each on a borrowed thread; the
// process must outlive them all, though it dies with its parent thread.
func TestNetCommandOutlivesNamespaceCalls(t *testing.T) {
	requireNetns(t)
	n := startNet(t, nil, "a")
	cmd := n.Command(context.Background(), 0, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	for range 200 {
		l, err := n.Listen(0, "tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	select {
	case <-exited:
		t.Fatalf("the process in the namespace ended: %v", cmd.ProcessState)
	default:
	}
}
