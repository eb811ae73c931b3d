package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/obolnet/obol/internal/nstest"
)

// A topology is one hub namespace holding a bridge, and a namespace per
// group of relays wired to it with a veth pair:
//
//	ns 0: eth0 10.101.0.1/16 ─┐
//	ns 1: eth0 10.102.0.1/16 ─┼─ hub: br0 (b0, b1, b2)
//	ns 2: eth0 10.103.0.1/16 ─┘
//
// Every namespace routes 10.0.0.0/8 on-link through its eth0, so all of
// them share one Ethernet segment; cutting a namespace's bridge port
// (b<i> down) takes its eth0's carrier away and partitions it. Each group
// has a /16 of its own: the DHT's routing-table diversity limits count
// peers per IPv4 /16, and nine relays in one /16 would not all fit.
type topology struct {
	hub  string   // namespace of the bridge
	ns   []string // namespaces of the relay groups
	base int      // first octet of every address on the bridge
}

// requireNetns skips the test unless it can build namespaces.
func requireNetns(t *testing.T) {
	t.Helper()
	nstest.Require(t, nstest.Needs{})
}

// newTopology builds the hub and n group namespaces, names unique to this
// process, and removes them all when the test ends.
func newTopology(t *testing.T, n int) *topology {
	return newTopologyBase(t, n, 10)
}

// newTopologyBase is newTopology with base.0.0.0/8 in place of
// 10.0.0.0/8 on the bridge. libp2p's hole punching works only between
// public addresses, so a test of it needs a public range: the namespaces
// have no link to the host's network, and the range is used only inside
// them.
func newTopologyBase(t *testing.T, n, base int) *topology {
	t.Helper()
	prefix := fmt.Sprintf("obol%d", os.Getpid())
	tp := &topology{hub: prefix + "hub", base: base}
	t.Cleanup(tp.remove)
	mustIP(t, "netns", "add", tp.hub)
	mustIP(t, "-n", tp.hub, "link", "add", "br0", "type", "bridge")
	mustIP(t, "-n", tp.hub, "link", "set", "br0", "up")
	for i := range n {
		ns := fmt.Sprintf("%sn%d", prefix, i)
		mustIP(t, "netns", "add", ns)
		tp.ns = append(tp.ns, ns)
		port := fmt.Sprintf("b%d", i)
		mustIP(t, "-n", tp.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		mustIP(t, "-n", tp.hub, "link", "set", port, "master", "br0")
		mustIP(t, "-n", tp.hub, "link", "set", port, "up")
		mustIP(t, "-n", ns, "link", "set", "lo", "up")
		mustIP(t, "-n", ns, "addr", "add", tp.addr(i)+"/16", "dev", "eth0")
		mustIP(t, "-n", ns, "link", "set", "eth0", "up")
		mustIP(t, "-n", ns, "route", "add", tp.net(), "dev", "eth0")
	}
	return tp
}

// addr is group i's IPv4 address.
func (tp *topology) addr(i int) string { return fmt.Sprintf("%d.%d.0.1", tp.base, 101+i) }

// net is the /8 of the bridge.
func (tp *topology) net() string { return fmt.Sprintf("%d.0.0.0/8", tp.base) }

// cut takes group i's bridge port down; heal brings it back.
func (tp *topology) cut(t *testing.T, i int) {
	mustIP(t, "-n", tp.hub, "link", "set", fmt.Sprintf("b%d", i), "down")
}

func (tp *topology) heal(t *testing.T, i int) {
	mustIP(t, "-n", tp.hub, "link", "set", fmt.Sprintf("b%d", i), "up")
}

// remove deletes every namespace; their veths and the bridge go with
// them. Processes still inside keep only their own loopback.
func (tp *topology) remove() {
	for _, ns := range append(tp.ns, tp.hub) {
		_ = ip("netns", "del", ns)
	}
}

func mustIP(t *testing.T, args ...string) {
	t.Helper()
	if err := ip(args...); err != nil {
		t.Fatal(err)
	}
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
