// Package nstest decides whether a test can build network namespaces, for
// the tests that run nodes in namespaces of their own.
package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Needs are what a namespace test needs beyond root and `ip netns`.
type Needs struct {
	Files []string // paths that must exist, e.g. /dev/net/tun
	Tools []string // commands that must be on PATH, e.g. curl
}

// Require skips tb unless it can build namespaces: in -short mode, when
// not root, or when `ip netns` or one of needs does not work. Under CI
// (CI set in the environment) a root test that cannot fails instead: CI
// runs as root, and a skip there would hide that the test never ran.
func Require(tb testing.TB, needs Needs) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("network-namespace test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		tb.Skip("network-namespace test needs root (ip netns); skipped")
	}
	what := append([]string{"ip netns"}, append(needs.Files, needs.Tools...)...)
	probe := fmt.Sprintf("obolprobe%d", os.Getpid())
	err := exec.Command("ip", "netns", "add", probe).Run()
	if err == nil {
		err = exec.Command("ip", "netns", "del", probe).Run()
	}
	for _, f := range needs.Files {
		if err == nil {
			_, err = os.Stat(f)
		}
	}
	for _, t := range needs.Tools {
		if err == nil {
			_, err = exec.LookPath(t)
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("running as root under CI, but %s does not work: %v", strings.Join(what, ", "), err)
		}
		tb.Skipf("%s unavailable: %v; skipped", strings.Join(what, ", "), err)
	}
}
