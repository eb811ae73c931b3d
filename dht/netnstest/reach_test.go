package netnstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// addNAT puts a home router on the bridge of tp: a namespace "nat0" whose
// eth0 (10.110.0.1/16) is a bridge port and whose in0 (192.168.77.1/24)
// leads to a namespace "lan0" (192.168.77.2/24, default route via the
// router). nftables masquerades everything the router forwards out of
// eth0, so peers on the bridge see the LAN's connections come from
// 10.110.0.1, and nothing they send reaches the LAN unless it answers a
// connection the LAN opened to that very peer and port (conntrack). The
// namespaces on the bridge have no route to 192.168.77.0/24. It returns
// the LAN namespace and the router's outside address.
func addNAT(t *testing.T, tp *topology) (lan, outside string) {
	return addRouter(t, tp, 0, "masquerade")
}

// addRouter is addNAT for router i (outside <base>.(110+i).0.1, LAN
// 192.168.(77+i).0/24, namespaces nat<i> and lan<i>), whose nftables
// rule out of eth0 is masq: "masquerade" keeps a UDP socket's source
// port towards every peer while it is free (a cone: one mapping for all
// destinations), "masquerade random" picks a port per connection from a
// hash of its source and destination (symmetric). Like a home router it
// drops what arrives unasked on eth0: a dropped packet leaves no conntrack
// entry behind, so a hole punch's packet that reaches the router before
// the LAN host's own does not take the port the host's mapping needs.
func addRouter(t *testing.T, tp *topology, i int, masq string) (lan, outside string) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("NAT test needs nft (nftables); skipped")
	}
	prefix := fmt.Sprintf("obol%d", os.Getpid())
	nat := fmt.Sprintf("%snat%d", prefix, i)
	outside = fmt.Sprintf("%d.%d.0.1", tp.base, 110+i)
	t.Cleanup(func() { _ = ip("netns", "del", nat) })
	mustIP(t, "netns", "add", nat)
	port := fmt.Sprintf("bnat%d", i)
	mustIP(t, "-n", tp.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", nat)
	mustIP(t, "-n", tp.hub, "link", "set", port, "master", "br0")
	mustIP(t, "-n", tp.hub, "link", "set", port, "up")
	mustIP(t, "-n", nat, "link", "set", "lo", "up")
	mustIP(t, "-n", nat, "addr", "add", outside+"/16", "dev", "eth0")
	mustIP(t, "-n", nat, "link", "set", "eth0", "up")
	mustIP(t, "-n", nat, "route", "add", tp.net(), "dev", "eth0")
	return addLAN(t, nat, "eth0", fmt.Sprintf("%slan%d", prefix, i), 77+i, masq), outside
}

// addLAN makes namespace nat, whose way out is its device wan, a home
// router as addRouter describes, for a new namespace lan
// (192.168.<net>.2/24) behind it; it returns lan.
func addLAN(t *testing.T, nat, wan, lan string, net int, masq string) string {
	t.Helper()
	inside := fmt.Sprintf("192.168.%d.", net)
	t.Cleanup(func() { _ = ip("netns", "del", lan) })
	mustIP(t, "netns", "add", lan)
	mustIP(t, "-n", nat, "link", "add", "in0", "type", "veth", "peer", "name", "eth0", "netns", lan)
	mustIP(t, "-n", nat, "addr", "add", inside+"1/24", "dev", "in0")
	mustIP(t, "-n", nat, "link", "set", "in0", "up")
	mustIP(t, "-n", lan, "link", "set", "lo", "up")
	mustIP(t, "-n", lan, "addr", "add", inside+"2/24", "dev", "eth0")
	mustIP(t, "-n", lan, "link", "set", "eth0", "up")
	mustIP(t, "-n", lan, "route", "add", "default", "via", inside+"1")
	mustRun(t, "", "ip", "netns", "exec", nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	mustRun(t, fmt.Sprintf(`table ip obolnat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "%[1]s" %[2]s
	}
	chain input_wan {
		type filter hook input priority filter; policy accept;
		iifname "%[1]s" ct state new drop
	}
	chain forward_wan {
		type filter hook forward priority filter; policy accept;
		iifname "%[1]s" ct state new drop
	}
}
`, wan, masq), "ip", "netns", "exec", nat, "nft", "-f", "-")
	return lan
}

func mustRun(t *testing.T, stdin string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// TestReachabilityBehindNAT runs three seed relays and a relay with a
// public address on the bridge, and a relay behind the masquerading
// router that announces the router's outside address and its own port —
// the mapping its outgoing connections really get. Each relay asks
// others to dial it back (AutoNAT v2). The public relay finds itself
// reachable and publishes; the relay behind the NAT finds itself
// unreachable, does not publish, and a client's view never holds it.
func TestReachabilityBehindNAT(t *testing.T) {
	requireNetns(t)
	bin := buildObol(t)
	tp := newTopology(t, 2)
	lan, outside := addNAT(t, tp)
	checked := []string{"--reach-private"}

	var seeds []string
	for i := range 3 {
		port := 7601 + i
		r := startRelayArgs(t, bin, 0, tp.ns[0], tp.addr(0), port, seeds, append(checked,
			"--skip-reach-check", "--listen", fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", tp.addr(0), port))...)
		seeds = append(seeds, r.addr)
	}
	public := startRelayArgs(t, bin, 1, tp.ns[1], tp.addr(1), 7611, seeds, append(checked,
		"--listen", fmt.Sprintf("/ip4/%s/udp/7611/quic-v1", tp.addr(1)))...)
	natted := startRelayArgs(t, bin, 2, lan, "192.168.77.2", 7621, seeds, append(checked,
		"--listen", "/ip4/192.168.77.2/udp/7621/quic-v1",
		"--announce", fmt.Sprintf("/ip4/%s/udp/7621/quic-v1", outside))...)

	if got := public.waitVerdict(t, 2*time.Minute); !got {
		t.Fatalf("relay with a public address classified itself unreachable")
	}
	if got := natted.waitVerdict(t, 2*time.Minute); got {
		t.Fatalf("relay behind a masquerading NAT classified itself reachable")
	}
	t.Logf("relay on the bridge: reachable; relay behind the NAT: unreachable")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		seqs, err := sampleFrom(ctx, bin, tp.ns[0], seeds, 5)
		if _, ok := seqs[natted.id]; ok {
			t.Fatalf("the relay behind the NAT is in a client's view")
		}
		if _, ok := seqs[public.id]; ok {
			t.Logf("client's view holds %d relays: the public relay, not the one behind the NAT", len(seqs))
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the public relay never reached a client's view (last sample %d relays, %v)", len(seqs), err)
		}
	}
	if strings.Contains(natted.logText(), "descriptor published") {
		t.Fatalf("the relay behind the NAT published a descriptor")
	}
}

// waitVerdict waits for the relay's first reachability verdict in its log.
func (r *relayProc) waitVerdict(t *testing.T, bound time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		for line := range strings.Lines(r.logText()) {
			if strings.Contains(line, `msg="reachability checked"`) {
				return strings.Contains(line, "reachable=true")
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("relay in %s reached no reachability verdict within %v:\n%s", r.ns, bound, r.tail())
	return false
}

func (r *relayProc) logText() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}
