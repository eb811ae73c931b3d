//go:build linux

package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/obolnet/obol/internal/nstest"
)

// An exit's default dialer asks for TCP Fast Open: its second connection
// to a server that takes Fast Open carries the stream's first data in the
// SYN, and the first connects as usual. Run in a network namespace of
// its own, whose sysctl lets its servers take Fast Open.
func TestExitDialUsesFastOpen(t *testing.T) {
	nstest.Require(t, nstest.Needs{})
	ns := fmt.Sprintf("obolfo%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.tcp_fastopen=3")

	synData := make(chan []bool, 1)
	errs := make(chan error, 1)
	go func() {
		// This thread enters the namespace and never leaves it: it ends
		// with the goroutine, still locked.
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errs <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errs <- err
			return
		}
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_FASTOPEN, 16) })
			if err != nil {
				return err
			}
			return serr
		}}
		l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		if err != nil {
			errs <- err
			return
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); io.CopyN(c, c, 5) }()
			}
		}()
		var cfg Config
		cfg.defaults()
		var got []bool
		for range 2 {
			c, err := cfg.Dial(context.Background(), "tcp", l.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			if _, err := c.Write([]byte("hello")); err != nil {
				errs <- err
				return
			}
			if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
				errs <- err
				return
			}
			raw, _ := c.(*net.TCPConn).SyscallConn()
			var info *unix.TCPInfo
			raw.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
			c.Close()
			if err != nil {
				errs <- err
				return
			}
			got = append(got, info.Options&tcpiOptSynData != 0)
		}
		synData <- got
	}()
	select {
	case err := <-errs:
		t.Fatal(err)
	case got := <-synData:
		if got[0] || !got[1] {
			t.Fatalf("data in the SYN of the first and second connection: %v, want [false true]", got)
		}
	}
}

// tcpiOptSynData is linux/tcp.h's TCPI_OPT_SYN_DATA: the SYN carried data
// and the SYN-ACK acknowledged it.
const tcpiOptSynData = 0x20
