//go:build !linux

package bench

import "syscall"

// listenFastOpen is nil off Linux, where the namespace run does not run.
var listenFastOpen func(network, address string, c syscall.RawConn) error
