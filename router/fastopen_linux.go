//go:build linux

package router

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// fastOpen asks for TCP Fast Open (RFC 7413) on an exit's connection:
// holding a cookie from an earlier connection to the same server, the
// kernel returns from connect at once and sends the stream's first data
// in the SYN, sparing the handshake's round trip; without one it
// connects as usual and asks the server for a cookie. A kernel without
// TCP_FASTOPEN_CONNECT (before Linux 4.11) connects as usual.
func fastOpen(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT, 1)
	})
}
