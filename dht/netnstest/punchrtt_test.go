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
	names := []string{"s0", "s1", "s2", "pub", "hostA", "hostB", "nat0", "nat1", "hostC", "hostD", "hostE",
		"nat2", "hostF", "p0", "p1", "p2", "p3", "hostG", "hostH", "sampler"}
	const seed0, pub, hostA, hostB, nat0, nat1, hostC, hostD, hostE, nat2, hostF, p0 = 0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
	const morePublic = 4        // p0 … p3
	const hostG, hostH = 17, 18 // callbacks, one host per series
	// The samples of the view come from a host of their own: a relay
	// limits new connections per source address, and a sample that
	// takes a few tries would spend a measured host's share.
	const sampler = 19
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
	bareLAN := addLAN(t, nodes[nat2].NS, nodes[nat2].Dev, prefix+"2", 79, "masquerade")

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
	// More public relays, and a second relay behind a cone NAT of its own
	// that keeps no connections (--kept-links 0), for the extends below.
	firstHops := []peer.ID{public.id}
	for i := range morePublic {
		port := 7631 + i
		r := startRelayArgs(t, bin, p0+i, nodes[p0+i].NS, addr(p0+i), port, seeds,
			"--listen", fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", addr(p0+i), port))
		firstHops = append(firstHops, r.id)
	}
	bare := startRelayArgs(t, bin, nat2, bareLAN, "192.168.79.2", 7622, seeds,
		"--listen", "/ip4/192.168.79.2/udp/7622/quic-v1", "--kept-links", "0")
	if got := bare.waitNAT(t, 3*time.Minute); got != "cone" {
		t.Fatalf("second relay behind a cone NAT classified itself %s", got)
	}

	cache := filepath.Join(t.TempDir(), "relays.cache")
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer scancel()
	for have := false; !have; {
		relays, err := sampleCache(sctx, bin, nodes[sampler].NS, seeds, 6, cache)
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
	measure := func(what, ns string, to peer.ID, punch string, connected []string, callback bool) time.Duration {
		paths := make([][]peer.ID, builds)
		for i := range paths {
			paths[i] = []peer.ID{to}
		}
		ok, res, took := runCircuitClient(t, ns, circuitClientRequest{Cache: cache, Paths: paths, Fresh: true,
			Punch: punch, Connected: connected, Callback: callback})
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
		direct := measure("direct", nodes[directHost].NS, public.id, "", others, false)
		punched := measure("hole punch", hostLAN, cone.id, seeds[2], connected, false)
		reversed := measure("connection reversal", nodes[hostB].NS, cone.id, seeds[2], connected, false)
		callbackHost := hostG
		if connected != nil {
			callbackHost = hostH
		}
		calledBack := measure("callback", nodes[callbackHost].NS, cone.id, "", connected, true)
		t.Logf("one-way delay %v, round trip %v; median one-hop build from a fresh host (%d builds each), connected to the other relays first: %v",
			d, rtt, builds, connected != nil)
		t.Logf("  direct to a public relay:          %6.1f ms = %4.1f round trips", ms(direct), rt(direct))
		t.Logf("  hole punch, both behind cone NATs: %6.1f ms = %4.1f round trips (+%.1f)", ms(punched), rt(punched), rt(punched-direct))
		t.Logf("  connection reversal, public host:  %6.1f ms = %4.1f round trips (+%.1f)", ms(reversed), rt(reversed), rt(reversed-direct))
		t.Logf("  callback, public host:             %6.1f ms = %4.1f round trips (+%.1f)", ms(calledBack), rt(calledBack), rt(calledBack-direct))
	}

	// In a circuit the previous hop of a relay behind a NAT is a public
	// relay, and the relay keeps a direct connection to the public relays
	// of its view: an extend to it takes that connection. Two-hop builds
	// through the public relay to another public relay (the baseline),
	// and through each public relay to the relay behind the cone NAT once
	// it holds its connections to all eight, and to the one that keeps
	// none.
	cone.waitLog(t, fmt.Sprintf(`msg="keeping direct connections to public relays" relays=%d`, 4+morePublic), 3*time.Minute)
	cache2 := filepath.Join(t.TempDir(), "relays.cache")
	want := append([]peer.ID{cone.id, bare.id, seedIDs[1]}, firstHops...)
	sctx2, scancel2 := context.WithTimeout(context.Background(), 3*time.Minute)
	defer scancel2()
	for have := false; !have; {
		relays, err := sampleCache(sctx2, bin, nodes[sampler].NS, seeds, 12, cache2)
		var seen int
		for _, r := range relays {
			if slices.Contains(want, r.PeerID) {
				seen++
			}
		}
		have = seen == len(want)
		if !have && sctx2.Err() != nil {
			t.Fatalf("the relays never reached a client's view (%v)", err)
		}
	}
	extend := func(what, ns string, paths [][]peer.ID) time.Duration {
		ok, res, took := runCircuitClient(t, ns, circuitClientRequest{Cache: cache2, Paths: paths, Fresh: true})
		if ok < len(paths)*9/10 {
			t.Fatalf("%d of %d builds succeeded:\n%s", ok, len(paths), res)
		}
		t.Logf("%s, in order: %v", what, took)
		slices.Sort(took)
		return median(took)
	}
	through := func(last peer.ID) [][]peer.ID {
		var paths [][]peer.ID
		for _, first := range firstHops {
			paths = append(paths, []peer.ID{first, last})
		}
		return paths
	}
	toPublic := extend("two hops, extend to a public relay", nodes[hostD].NS, slices.Repeat([][]peer.ID{{public.id, seedIDs[1]}}, builds))
	toCone := extend("two hops through each public relay, extend to the relay behind the cone NAT", nodes[hostE].NS, through(cone.id))
	toBare := extend("the same to the relay behind a cone NAT that keeps no connections", nodes[hostF].NS, through(bare.id))
	t.Logf("median two-hop build from a fresh public host (%d builds; %d, one through each public relay):", builds, len(firstHops))
	t.Logf("  extend to a public relay:                          %6.1f ms = %4.1f round trips", ms(toPublic), rt(toPublic))
	t.Logf("  extend to a relay behind a cone NAT, kept links:   %6.1f ms = %4.1f round trips (+%.1f)", ms(toCone), rt(toCone), rt(toCone-toPublic))
	t.Logf("  extend to a relay behind a cone NAT, none kept:    %6.1f ms = %4.1f round trips (+%.1f)", ms(toBare), rt(toBare), rt(toBare-toPublic))
}
