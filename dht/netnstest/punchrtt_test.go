package netnstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/internal/netemu"
)

// punchDelayEnv, set to a one-way link delay (e.g. "10ms"), runs
// TestPunchRoundTrips; it is a measurement of a minute or more, not part
// of the default suite.
const punchDelayEnv = "OBOL_PUNCH_DELAY"

// TestPunchRoundTrips measures, on links of a known one-way delay d
// (internal/netemu: every node pair is one link of delay d each way, a
// round trip of 2d), the one-hop circuit build from a previous hop that
// has no connection to the first hop yet — a fresh host each build:
//
//   - direct: a public host to a public relay;
//   - punch: a host behind a cone NAT to a relay behind another, through
//     a rendezvous and a DCUtR hole punch;
//   - reversal: a public host to the relay behind the cone NAT, through a
//     rendezvous, the relay dialling it back.
//
// It logs each median in milliseconds and in round trips, and the
// punch's and the reversal's extra round trips over direct. A LAN behind
// a router adds no delay. Run with
//
//	OBOL_PUNCH_DELAY=10ms go test -p 1 -run TestPunchRoundTrips -v ./dht/netnstest
func TestPunchRoundTrips(t *testing.T) {
	v := os.Getenv(punchDelayEnv)
	if v == "" {
		t.Skipf("a measurement; set %s to a one-way link delay to run it", punchDelayEnv)
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", punchDelayEnv, v)
	}
	requireNetns(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (nftables)")
	}
	bin := buildObol(t)
	// A relay limits new connections per source address (a burst of 16):
	// each series of builds to a public relay comes from a host of its own.
	names := []string{"s0", "s1", "s2", "pub", "hostA", "hostB", "nat0", "nat1", "hostC", "hostD", "hostE"}
	const seed0, pub, hostA, hostB, nat0, nat1, hostC, hostD, hostE = 0, 3, 4, 5, 6, 7, 8, 9, 10
	n, err := netemu.Create(netemu.Config{Prefix: fmt.Sprintf("op%d", os.Getpid()%10000000),
		Nodes: names, Delay: netemu.Constant(d), Base: 11})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; n.Close() })
	nodes := n.Nodes()
	addr := func(i int) string { return nodes[i].Addr.String() }
	prefix := fmt.Sprintf("op%dl", os.Getpid()%10000000)
	coneLAN := addLAN(t, nodes[nat0].NS, nodes[nat0].Dev, prefix+"0", 77, "masquerade")
	hostLAN := addLAN(t, nodes[nat1].NS, nodes[nat1].Dev, prefix+"1", 78, "masquerade")

	var seeds []string
	var seedIDs []peer.ID
	for i := range 3 {
		port := 7601 + i
		r := startRelayArgs(t, bin, seed0+i, nodes[seed0+i].NS, addr(seed0+i), port, seeds,
			"--skip-reach-check", "--listen", fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", addr(seed0+i), port))
		seeds = append(seeds, r.addr)
		seedIDs = append(seedIDs, r.id)
	}
	public := startRelayArgs(t, bin, pub, nodes[pub].NS, addr(pub), 7611, seeds,
		"--listen", fmt.Sprintf("/ip4/%s/udp/7611/quic-v1", addr(pub)))
	cone := startRelayArgs(t, bin, nat0, coneLAN, "192.168.77.2", 7621, seeds,
		"--listen", "/ip4/192.168.77.2/udp/7621/quic-v1")
	if got := cone.waitNAT(t, 3*time.Minute); got != "cone" {
		t.Fatalf("relay behind the cone NAT classified itself %s", got)
	}

	cache := filepath.Join(t.TempDir(), "relays.cache")
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer scancel()
	for have := false; !have; {
		relays, err := sampleCache(sctx, bin, nodes[hostA].NS, seeds, 6, cache)
		var seen int
		for _, r := range relays {
			if r.PeerID == cone.id || r.PeerID == public.id {
				seen++
			}
		}
		have = seen == 2
		if !have && sctx.Err() != nil {
			t.Fatalf("the relays never reached a client's view (%v)", err)
		}
	}

	const builds = 10
	measure := func(what, ns string, to peer.ID, punch string, connected []string) time.Duration {
		paths := make([][]peer.ID, builds)
		for i := range paths {
			paths[i] = []peer.ID{to}
		}
		ok, res, took := runCircuitClient(t, ns, circuitClientRequest{Cache: cache, Paths: paths, Fresh: true,
			Punch: punch, Connected: connected})
		if ok < builds*9/10 {
			t.Fatalf("%d of %d builds succeeded:\n%s", ok, builds, res)
		}
		slices.Sort(took)
		t.Logf("%s: %v", what, took)
		return median(took)
	}
	// Each kind twice: from a host with no connection at all, and from
	// one already connected to the other relays (every rendezvous among
	// them), as a relay extending a circuit is.
	rtt := 2 * d
	rt := func(x time.Duration) float64 { return float64(x) / float64(rtt) }
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	for _, connected := range [][]string{nil, append(slices.Clone(seeds), public.addr)} {
		others := connected
		if others != nil {
			others = seeds // not the relay it builds to
		}
		directHost := hostA
		if connected != nil {
			directHost = hostC
		}
		direct := measure("direct", nodes[directHost].NS, public.id, "", others)
		punched := measure("hole punch", hostLAN, cone.id, seeds[2], connected)
		reversed := measure("connection reversal", nodes[hostB].NS, cone.id, seeds[2], connected)
		t.Logf("one-way delay %v, round trip %v; median one-hop build from a fresh host (%d builds each), connected to the other relays first: %v",
			d, rtt, builds, connected != nil)
		t.Logf("  direct to a public relay:          %6.1f ms = %4.1f round trips", ms(direct), rt(direct))
		t.Logf("  hole punch, both behind cone NATs: %6.1f ms = %4.1f round trips (+%.1f)", ms(punched), rt(punched), rt(punched-direct))
		t.Logf("  connection reversal, public host:  %6.1f ms = %4.1f round trips (+%.1f)", ms(reversed), rt(reversed), rt(reversed-direct))
	}

	// In a circuit the previous hop of a relay behind a NAT is a public
	// relay, and the relay keeps a direct connection to the public relays
	// of its view: an extend to it takes that connection. Two-hop builds
	// through the public relay, to a public relay and to the relay behind
	// the cone NAT, once the latter holds its connections to all four.
	cone.waitLog(t, `msg="keeping direct connections to public relays" relays=4`, 3*time.Minute)
	cache2 := filepath.Join(t.TempDir(), "relays.cache")
	for have := false; !have; {
		relays, err := sampleCache(sctx, bin, nodes[hostD].NS, seeds, 6, cache2)
		var seen int
		for _, r := range relays {
			if r.PeerID == cone.id || r.PeerID == public.id || r.PeerID == seedIDs[1] {
				seen++
			}
		}
		have = seen == 3
		if !have && sctx.Err() != nil {
			t.Fatalf("the relays never reached a client's view (%v)", err)
		}
	}
	extend := func(what, ns string, last peer.ID) time.Duration {
		paths := make([][]peer.ID, builds)
		for i := range paths {
			paths[i] = []peer.ID{public.id, last}
		}
		ok, res, took := runCircuitClient(t, ns, circuitClientRequest{Cache: cache2, Paths: paths, Fresh: true})
		if ok < builds*9/10 {
			t.Fatalf("%d of %d builds succeeded:\n%s", ok, builds, res)
		}
		slices.Sort(took)
		t.Logf("%s: %v", what, took)
		return median(took)
	}
	toPublic := extend("two hops, extend to a public relay", nodes[hostD].NS, seedIDs[1])
	toCone := extend("two hops, extend to the relay behind the cone NAT", nodes[hostE].NS, cone.id)
	t.Logf("median two-hop build through a public relay from a fresh public host (%d builds each):", builds)
	t.Logf("  extend to a public relay:               %6.1f ms = %4.1f round trips", ms(toPublic), rt(toPublic))
	t.Logf("  extend to the relay behind a cone NAT:  %6.1f ms = %4.1f round trips (+%.1f)", ms(toCone), rt(toCone), rt(toCone-toPublic))
}
