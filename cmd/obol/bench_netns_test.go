package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/obolnet/obol/cmd/internal/bench"
	"github.com/obolnet/obol/internal/nstest"
)

// requireNetnsBench skips the test unless it can build namespaces with
// TUN devices and run curl.
func requireNetnsBench(t *testing.T) {
	t.Helper()
	nstest.Require(t, nstest.Needs{Files: []string{"/dev/net/tun"}, Tools: []string{"curl"}})
}

// netnsArgs is a small namespace run: four relays, one sample of each.
var netnsArgs = []string{"bench", "--netns", "--relays", "4", "--samples", "1", "--bulk", "256KiB",
	"--rounds", "1", "--parallel", "2"}

// leftovers lists what a bench process pid left behind: namespaces named
// after it, and processes that run from its data directories.
func leftovers(t *testing.T, pid int) []string {
	t.Helper()
	var left []string
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, fmt.Sprintf("ob%d-", pid%10000000)) {
			left = append(left, "namespace "+strings.TrimSpace(line))
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "obol-bench-netns-") {
			left = append(left, "process "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return left
}

// startNetnsBench starts `obol bench` with args and, should the test end
// with it still running, interrupts it so that it cleans up, and removes
// what it left behind if it does not.
func startNetnsBench(t *testing.T, args ...string) *child {
	c := startChild(t, buildObol(t), args...)
	t.Cleanup(func() {
		select {
		case <-c.done:
			return
		default:
		}
		c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			c.kill()
		}
		for _, l := range leftovers(t, c.cmd.Process.Pid) {
			if ns, ok := strings.CutPrefix(l, "namespace "); ok {
				exec.Command("ip", "netns", "del", ns).Run()
			}
		}
	})
	return c
}

// TestBenchNetns runs a small `obol bench --netns` end to end — relay and
// proxy processes in namespaces, curl through SOCKS — and checks its
// figures are there and that it leaves nothing behind. It asserts no
// wall-clock figure.
func TestBenchNetns(t *testing.T) {
	requireNetnsBench(t)
	dir := t.TempDir()
	doc := filepath.Join(dir, "performance.md")
	c := startNetnsBench(t, append(netnsArgs, "--quiet", "--out", dir, "--doc", doc)...)
	<-c.done
	if code := c.cmd.ProcessState.ExitCode(); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, c.err.String())
	}
	if left := leftovers(t, c.cmd.Process.Pid); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bench-netns.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r bench.NetnsReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	// Fresh and existing circuits, the existing one from a server without
	// TCP Fast Open, and direct TCP.
	if len(r.TTFB) != 4 || len(r.Bulk) != 3 || r.Memory == nil || r.Parallel == nil {
		t.Fatalf("report lacks scenarios:\n%s", b)
	}
	for _, s := range r.TTFB {
		if len(s.Samples) != 1 || s.Median <= 0 {
			t.Errorf("first byte %q: %v", s.Name, s.Samples)
		}
	}
	for _, bk := range r.Bulk {
		if bk.MBps <= 0 {
			t.Errorf("bulk %q: %v MB/s", bk.Name, bk.MBps)
		}
	}
	if r.Memory.ProxyPeakMiB <= 0 || r.Memory.PathRelayMedianMiB <= 0 || len(r.Memory.PathRelays) != 3 {
		t.Errorf("memory %+v", r.Memory)
	}
	if r.Forwarder.Packets == 0 || r.Forwarder.Lost != 0 {
		t.Errorf("forwarder %+v: want packets carried and none lost", r.Forwarder)
	}
	if d, err := os.ReadFile(doc); err != nil || !strings.Contains(string(d), "## Through processes, in network namespaces") {
		t.Errorf("document (%v):\n%s", err, d)
	}
}

// TestBenchNetnsInterrupt interrupts a namespace run once it measures
// and checks that it removes its namespaces and stops its processes.
func TestBenchNetnsInterrupt(t *testing.T) {
	requireNetnsBench(t)
	c := startNetnsBench(t, netnsArgs...)
	c.waitLog(t, "first byte")
	if code := c.interrupt(t); code != exitFail {
		t.Errorf("exit code %d after SIGINT, want %d; stderr:\n%s", code, exitFail, c.err.String())
	}
	if left := leftovers(t, c.cmd.Process.Pid); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
