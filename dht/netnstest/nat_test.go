package netnstest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestNATClassification runs three seed relays, each in a namespace (and
// a /16) of its own, so that they are three observers with distinct IP
// addresses, and three relays under test: one on the bridge, one behind a
// cone NAT (nftables masquerade, which keeps a UDP socket's port towards
// every peer) and one behind a symmetric NAT (masquerade random, a port
// per destination). Each classifies itself from AutoNAT v2 and from the
// addresses the seeds observe it at: public, cone, symmetric. Neither
// relay behind a NAT publishes as a relay, and a client's view never holds
// the one behind the symmetric NAT.
func TestNATClassification(t *testing.T) {
	requireNetns(t)
	bin := buildObol(t)
	tp := newTopology(t, 4)
	coneLAN, _ := addRouter(t, tp, 0, "masquerade")
	symLAN, _ := addRouter(t, tp, 1, "masquerade random")
	checked := []string{"--reach-private"}

	var seeds []string
	for i := range 3 {
		port := 7601 + i
		r := startRelayArgs(t, bin, i, tp.ns[i], tp.addr(i), port, seeds, append(checked,
			"--skip-reach-check", "--listen", fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", tp.addr(i), port))...)
		seeds = append(seeds, r.addr)
	}
	public := startRelayArgs(t, bin, 3, tp.ns[3], tp.addr(3), 7611, seeds, append(checked,
		"--listen", fmt.Sprintf("/ip4/%s/udp/7611/quic-v1", tp.addr(3)))...)
	cone := startRelayArgs(t, bin, 4, coneLAN, "192.168.77.2", 7621, seeds, append(checked,
		"--listen", "/ip4/192.168.77.2/udp/7621/quic-v1")...)
	sym := startRelayArgs(t, bin, 5, symLAN, "192.168.78.2", 7631, seeds, append(checked,
		"--listen", "/ip4/192.168.78.2/udp/7631/quic-v1")...)

	for _, c := range []struct {
		r    *relayProc
		want string
	}{{public, "public"}, {cone, "cone"}, {sym, "symmetric"}} {
		if got := c.r.waitNAT(t, 2*time.Minute); got != c.want {
			t.Fatalf("relay in %s classified itself %s, want %s", c.r.ns, got, c.want)
		}
	}
	t.Logf("relays classified themselves public, cone and symmetric")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		seqs, err := sampleFrom(ctx, bin, tp.ns[0], seeds, 6)
		if _, ok := seqs[sym.id]; ok {
			t.Fatalf("the relay behind the symmetric NAT is in a client's view")
		}
		if _, ok := seqs[public.id]; ok {
			t.Logf("client's view holds %d relays: the public relay, not the one behind the symmetric NAT", len(seqs))
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the public relay never reached a client's view (last sample %d relays, %v)", len(seqs), err)
		}
	}
	if strings.Contains(sym.logText(), "descriptor published") {
		t.Fatalf("the relay behind the symmetric NAT published a descriptor")
	}
}

// waitNAT waits for the relay's first NAT class in its log.
// waitLog waits until a line of the relay's log contains text.
func (r *relayProc) waitLog(t *testing.T, text string, bound time.Duration) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		if strings.Contains(r.logText(), text) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("relay in %s logged no %q within %v:\n%s", r.ns, text, bound, r.tail())
}

func (r *relayProc) waitNAT(t *testing.T, bound time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		for line := range strings.Lines(r.logText()) {
			if strings.Contains(line, `msg="NAT classified"`) {
				_, class, _ := strings.Cut(line, "nat=")
				return strings.TrimSpace(class)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("relay in %s reached no NAT class within %v:\n%s", r.ns, bound, r.tail())
	return ""
}
