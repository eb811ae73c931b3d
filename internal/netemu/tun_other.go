//go:build !linux

package netemu

import (
	"errors"
	"os"
	"syscall"
)

var errNotLinux = errors.New("netemu: TUN devices and network namespaces need Linux")

func openTUN(string) (*os.File, error) { return nil, errNotLinux }

func inNetns(string, func() error) error { return errNotLinux }

func deathSignal() *syscall.SysProcAttr { return nil }
