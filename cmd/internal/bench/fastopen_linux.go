//go:build linux

package bench

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// listenFastOpen lets a listener take TCP Fast Open: data in a SYN that
// carries the cookie it gave before (a queue of 256 such connections).
func listenFastOpen(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_FASTOPEN, 256)
	}); err != nil {
		return err
	}
	return serr
}
