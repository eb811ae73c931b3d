package netnstest

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestPublicRelayExtendsByCallback runs three seed relays, a public relay
// P and a relay N behind a cone NAT that keeps no connections, as
// processes. P and N are kept apart (nftables in P's namespace drops N's
// router's address) until N has classified itself and holds its
// reservations, so no connection between them exists; then the cut is
// lifted and a client builds a circuit through P to N at once. P has no
// connection to N and asks for a callback through one of N's rendezvous;
// N dials P back, and P says in its log that the link opened on a
// callback. The build must succeed: this is the relays' own wiring of
// callbacks, end to end (02 §Callbacks).
func TestPublicRelayExtendsByCallback(t *testing.T) {
	requireNetns(t)
	bin := buildObol(t)
	// Namespaces 0–2 the seeds, 3 the public relay, 4 the samples of the
	// view and 5 the client: a relay limits new connections per source
	// address, and each gets an address of its own.
	tp := newTopologyBase(t, 6, 11)
	coneLAN, outside := addRouter(t, tp, 0, "masquerade")

	var seeds []string
	for i := range 3 {
		port := 7601 + i
		r := startRelayArgs(t, bin, i, tp.ns[i], tp.addr(i), port, seeds,
			"--skip-reach-check", "--listen", fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", tp.addr(i), port))
		seeds = append(seeds, r.addr)
	}
	cut := fmt.Sprintf(`table inet obolcut {
	chain in { type filter hook input priority 0; policy accept; ip saddr %[1]s drop; }
	chain out { type filter hook output priority 0; policy accept; ip daddr %[1]s drop; }
}
`, outside)
	mustRun(t, cut, "ip", "netns", "exec", tp.ns[3], "nft", "-f", "-")
	public := startRelayArgs(t, bin, 3, tp.ns[3], tp.addr(3), 7611, seeds,
		"--listen", fmt.Sprintf("/ip4/%s/udp/7611/quic-v1", tp.addr(3)))
	cone := startRelayArgs(t, bin, 4, coneLAN, "192.168.77.2", 7621, seeds,
		"--listen", "/ip4/192.168.77.2/udp/7621/quic-v1", "--kept-links", "0")
	if got := public.waitNAT(t, 2*time.Minute); got != "public" {
		t.Fatalf("the public relay classified itself %s", got)
	}
	if got := cone.waitNAT(t, 2*time.Minute); got != "cone" {
		t.Fatalf("relay behind the cone NAT classified itself %s", got)
	}
	cone.waitLog(t, `msg="rendezvous reservations" held=2`, 2*time.Minute)

	// A client's view with both relays in it.
	cache := filepath.Join(t.TempDir(), "relays.cache")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for have := false; !have; {
		relays, err := sampleCache(ctx, bin, tp.ns[4], seeds, 6, cache)
		seen := 0
		for _, r := range relays {
			if r.PeerID == cone.id || r.PeerID == public.id {
				seen++
			}
		}
		have = seen == 2
		if !have && ctx.Err() != nil {
			t.Fatalf("the relays never reached a client's view (%v)", err)
		}
	}
	// The relay behind the NAT must know the public one to dial it back
	// at its published address: wait until its view holds it.
	waitKnows(t, bin, cone, public.id)

	mustRun(t, "", "ip", "netns", "exec", tp.ns[3], "nft", "delete", "table", "inet", "obolcut")
	ok, results, took := runCircuitClient(t, tp.ns[5], circuitClientRequest{Cache: cache,
		Paths: [][]peer.ID{{public.id, cone.id}}})
	if ok != 1 {
		t.Fatalf("the build through the public relay to the relay behind the NAT failed:\n%s", results)
	}
	if !strings.Contains(public.logText(), `msg="link opened on a callback"`) {
		t.Fatalf("the public relay did not reach the relay behind the NAT by a callback:\n%s", public.tail())
	}
	t.Logf("two-hop build, the extend by a callback: %v", took)
}

// waitKnows waits until r's status lists id among the relays of its
// view.
func waitKnows(t *testing.T, bin string, r *relayProc, id peer.ID) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", r.ns, bin, "status",
			"--addr", r.status, "--json", "--timeout", "5s").Output()
		cancel()
		var s struct {
			Relays []struct {
				PeerID string `json:"peer_id"`
			} `json:"relays"`
		}
		if err == nil && json.Unmarshal(out, &s) == nil {
			for _, x := range s.Relays {
				if x.PeerID == id.String() {
					return
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("relay in %s never had %s in its view", r.ns, id.ShortString())
}
