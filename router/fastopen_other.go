//go:build !linux

package router

import "syscall"

// fastOpen is nil where obol does not ask for TCP Fast Open.
var fastOpen func(network, address string, c syscall.RawConn) error
