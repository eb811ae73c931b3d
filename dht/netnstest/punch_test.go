package netnstest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
)

// punchBuilds is how many circuits the test builds through the relay
// behind the cone NAT.
const punchBuilds = 20

// TestConeNATRelayCarriesCircuits runs, on a bridge in a public address
// range (hole punching works between public addresses only), three seed
// relays, which check themselves public and serve as hole-punch
// rendezvous, a public relay, and a relay behind a cone NAT. The relay
// behind the NAT classifies itself cone, holds reservations at seeds and
// publishes their /p2p-circuit addresses without the guard role. A client
// on the bridge then builds circuits whose middle or exit is that relay,
// from the other relays; and hosts behind cone NATs of their own, which
// that relay has never connected to, reach it through a rendezvous and a
// DCUtR hole punch, the circuit's cells on the direct connection; fresh
// hosts with public addresses reach it through a rendezvous too, and it
// dials them back. At least 90 % of each kind of build must succeed. The
// test logs the median one-hop build times.
func TestConeNATRelayCarriesCircuits(t *testing.T) {
	requireNetns(t)
	bin := buildObol(t)
	tp := newTopologyBase(t, 5, 11)
	coneLAN, _ := addRouter(t, tp, 0, "masquerade")

	var seeds []string
	var seedIDs []peer.ID
	for i := range 3 {
		port := 7601 + i
		r := startRelayArgs(t, bin, i, tp.ns[i], tp.addr(i), port, seeds,
			"--skip-reach-check", "--listen", fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", tp.addr(i), port))
		seeds = append(seeds, r.addr)
		seedIDs = append(seedIDs, r.id)
	}
	public := startRelayArgs(t, bin, 3, tp.ns[3], tp.addr(3), 7611, seeds,
		"--listen", fmt.Sprintf("/ip4/%s/udp/7611/quic-v1", tp.addr(3)))
	cone := startRelayArgs(t, bin, 4, coneLAN, "192.168.77.2", 7621, seeds,
		"--listen", "/ip4/192.168.77.2/udp/7621/quic-v1")
	if got := cone.waitNAT(t, 2*time.Minute); got != "cone" {
		t.Fatalf("relay behind the cone NAT classified itself %s", got)
	}

	// A client's view with the relay behind the NAT in it.
	cache := filepath.Join(t.TempDir(), "relays.cache")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var desc *descriptor.Relay
	for desc == nil {
		relays, err := sampleCache(ctx, bin, tp.ns[3], seeds, 6, cache)
		for _, r := range relays {
			if r.PeerID == cone.id {
				desc = r
			}
		}
		if desc == nil && ctx.Err() != nil {
			t.Fatalf("the relay behind the cone NAT never reached a client's view (%v)", err)
		}
	}
	if desc.Roles.Has(descriptor.RoleGuard) {
		t.Errorf("the relay behind the cone NAT offers the guard role: %v", desc.Roles)
	}
	for _, b := range desc.Addrs {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err != nil {
			t.Errorf("the relay behind the cone NAT publishes a direct address %v", a)
		}
	}

	// Paths in turn: the relay behind the NAT as exit after each seed and
	// the public relay, and as middle between them.
	guards := append(append([]peer.ID(nil), seedIDs...), public.id)
	var paths [][]peer.ID
	for i := range punchBuilds {
		g := guards[i%len(guards)]
		if i%2 == 0 {
			paths = append(paths, []peer.ID{g, cone.id})
		} else {
			paths = append(paths, []peer.ID{g, cone.id, guards[(i+1)%len(guards)]})
		}
	}
	ok, results, _ := runCircuitClient(t, tp.ns[3], circuitClientRequest{Cache: cache, Paths: paths})
	t.Logf("%d of %d builds through the relay behind the cone NAT succeeded", ok, len(paths))
	if ok*10 < len(paths)*9 {
		t.Fatalf("%d of %d builds succeeded, want at least 90 %%:\n%s", ok, len(paths), results)
	}

	// In a network this small the relay behind the NAT has opened a
	// connection to every other relay itself, and the builds above ride
	// those. A previous hop it has no connection to — here a fresh host
	// each time, behind a cone NAT of its own, so that neither side can
	// dial the other — reaches it only through a rendezvous and a hole
	// punch. Two such NATs, half the builds each: a relay takes new
	// connections from one IP address at 0.2/s after a burst of 16. The
	// hosts learn their observed address from the third seed; the relay
	// behind the NAT holds its reservations at two relays of its view.
	var punched, direct []time.Duration
	ok, results = 0, ""
	for r := 1; r <= 2; r++ {
		lan, _ := addRouter(t, tp, r, "masquerade")
		paths = paths[:0]
		for range punchBuilds / 2 {
			paths = append(paths, []peer.ID{cone.id})
		}
		n, res, took := runCircuitClient(t, lan, circuitClientRequest{Cache: cache, Paths: paths, Fresh: true, Punch: seeds[2]})
		ok, results, punched = ok+n, results+res, append(punched, took...)
		// The same one-hop builds from fresh hosts, to the public relay,
		// which they dial directly: what the punch adds.
		for i := range paths {
			paths[i] = []peer.ID{public.id}
		}
		_, _, took = runCircuitClient(t, lan, circuitClientRequest{Cache: cache, Paths: paths, Fresh: true})
		direct = append(direct, took...)
	}
	t.Logf("%d of %d hole-punched first links to the relay behind the cone NAT carried a circuit:\n%s", ok, punchBuilds, results)
	if ok*10 < punchBuilds*9 {
		t.Fatalf("%d of %d hole-punched builds succeeded, want at least 90 %%", ok, punchBuilds)
	}
	if strings.Contains(results, "relayed") || strings.Count(results, "conns: direct") != ok {
		t.Fatalf("a circuit's link is not on the one direct connection:\n%s", results)
	}
	t.Logf("median one-hop build from a new host behind a NAT: %v through a rendezvous and a hole punch (%d builds), %v straight to a public relay (%d builds)",
		median(punched), len(punched), median(direct), len(direct))

	// A previous hop with a public address, as relays have: once identify
	// has run over the relayed connection, the relay behind the NAT dials
	// it back directly (connection reversal), with no hole punch. These
	// are the 21st to 30th relayed connections the relay takes, all of
	// them from its rendezvous's addresses: past libp2p's 16 new
	// connections per IP address, which no longer count relayed ones.
	// The hosts sit in a group of their own, so that the rendezvous'
	// own per-address limits see them apart from the public relay.
	paths = paths[:0]
	for range punchBuilds / 2 {
		paths = append(paths, []peer.ID{cone.id})
	}
	n, res, reversed := runCircuitClient(t, tp.ns[4], circuitClientRequest{Cache: cache, Paths: paths, Fresh: true, Punch: seeds[2]})
	if n*10 < len(paths)*9 {
		t.Fatalf("%d of %d builds from public hosts succeeded, want at least 90 %%:\n%s", n, len(paths), res)
	}
	if strings.Contains(res, "relayed") || strings.Count(res, "conns: direct") != n {
		t.Fatalf("a circuit's link is not on the one direct connection:\n%s", res)
	}
	t.Logf("median one-hop build from a new public host through a rendezvous, dialled back: %v (%d of %d builds)",
		median(reversed), n, len(paths))
}

// sampleCache is sampleFrom keeping the cache file at path; it returns
// the descriptors the cache holds.
func sampleCache(ctx context.Context, bin, ns string, bootstrap []string, n int, path string) ([]*descriptor.Relay, error) {
	dir := filepath.Dir(path)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, bin, "relays",
		"--bootstrap", strings.Join(bootstrap, ","), "--data-dir", dir,
		"-n", fmt.Sprint(n), "--timeout", "15s", "--log-level", "warn")
	out, runErr := cmd.CombinedOutput()
	if runErr != nil {
		runErr = fmt.Errorf("obol relays in %s: %v: %s", ns, runErr, strings.TrimSpace(string(out)))
	}
	cache := dht.NewCache(path, time.Now)
	if err := cache.Load(); err != nil {
		return nil, err
	}
	return cache.Relays(), runErr
}

// circuitClientEnv carries the request to the client helper.
const circuitClientEnv = "OBOL_NETNS_CIRCUIT_CLIENT"

type circuitClientRequest struct {
	Cache string      // relays.cache to take the hops from
	Paths [][]peer.ID // one build each
	// Fresh builds each path from a fresh host: the stand-in for a
	// previous hop with no connection to the first hop yet.
	Fresh bool
	// Punch, with Fresh, makes the host answer hole punches first: it
	// learns its observed address from the peer at Punch.
	Punch string
	// Connected, with Fresh, are peers the host connects to before each
	// build, as a relay is connected to others of the network.
	Connected []string
	// Callback, with Fresh, has the host ask a relay behind a NAT for a
	// callback through its rendezvous (dht.RequestCallback) before a
	// relayed connection, as a public relay does.
	Callback bool
}

// runCircuitClient runs this test binary's TestCircuitClientHelper in
// namespace ns: it builds one circuit per path and reports each result.
// It returns how many builds succeeded, and the results.
func runCircuitClient(t *testing.T, ns string, req circuitClientRequest) (int, string, []time.Duration) {
	t.Helper()
	raw, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestCircuitClientHelper$", "-test.v")
	cmd.Env = append(os.Environ(), circuitClientEnv+"="+string(raw))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("circuit client: %v\n%s", err, out)
	}
	ok := 0
	var results strings.Builder
	var took []time.Duration
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if _, res, found := strings.Cut(line, "build result: "); found {
			results.WriteString(res + "\n")
			if strings.HasPrefix(res, "ok") {
				ok++
				_, d, _ := strings.Cut(res, " in ")
				d, _, _ = strings.Cut(d, " ")
				if dur, err := time.ParseDuration(d); err == nil {
					took = append(took, dur)
				}
			}
		}
	}
	return ok, results.String(), took
}

// median is the middle of ds, 0 if none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestCircuitClientHelper is the client of TestConeNATRelayCarriesCircuits,
// run in a namespace of its own; it is skipped otherwise.
func TestCircuitClientHelper(t *testing.T) {
	raw := os.Getenv(circuitClientEnv)
	if raw == "" {
		t.Skip("the circuit client of a namespace test; run by it")
	}
	var req circuitClientRequest
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		t.Fatal(err)
	}
	cache := dht.NewCache(req.Cache, time.Now)
	if err := cache.Load(); err != nil {
		t.Fatal(err)
	}
	var shared *link.Manager
	if !req.Fresh {
		h, lm := newClientHost(t, false, false)
		defer h.Close()
		defer lm.Close()
		shared = lm
	}
	var paths [][]client.Hop // resolved at once: the descriptors expire
	for _, p := range req.Paths {
		hops, err := hopsFrom(cache, p)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, hops)
	}
	for i, hops := range paths {
		fmt.Printf("build result: %s\n", strings.ReplaceAll(buildOnce(t, req, shared, i, hops), "\n", " "))
	}
}

// buildOnce builds one circuit along hops, with shared or from a fresh
// host as req says; it describes the result.
func buildOnce(t *testing.T, req circuitClientRequest, shared *link.Manager, i int, hops []client.Hop) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lm := shared
	if req.Fresh {
		// Closed after the build: a peer admits only a few connections
		// from one IP address at a time.
		h, fresh := newClientHost(t, req.Punch != "", req.Callback)
		defer h.Close()
		defer fresh.Close()
		if req.Punch != "" {
			if why := punchReady(ctx, h, req.Punch); why != "" {
				return fmt.Sprintf("fail %d: %s", i, why)
			}
		}
		lm = fresh
		for _, a := range req.Connected {
			ai, err := peer.AddrInfoFromString(a)
			if err != nil {
				return fmt.Sprintf("fail %d: %v", i, err)
			}
			if err := h.Connect(ctx, *ai); err != nil {
				return fmt.Sprintf("fail %d: (not connected to %s: %v)", i, ai.ID.ShortString(), err)
			}
		}
	}
	start := time.Now()
	c, err := client.Build(ctx, lm, hops)
	took := time.Since(start)
	if err != nil {
		return fmt.Sprintf("fail %d (%d hops): %v", i, len(hops), err)
	}
	defer c.Close()
	how := ""
	if req.Fresh {
		how = connKind(lm, hops[0].Peer.ID)
	}
	return fmt.Sprintf("ok %d (%d hops) in %v %s", i, len(hops), took, how)
}

// newClientHost is a client's host and link manager, answering hole
// punches if punch.
func newClientHost(t *testing.T, punch, callback bool) (host.Host, *link.Manager) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := dht.NewHost(dht.HostConfig{Identity: k, Listen: []string{"/ip4/0.0.0.0/udp/0/quic-v1"}, HolePunch: punch})
	if err != nil {
		t.Fatal(err)
	}
	var cfg link.Config
	if callback {
		cfg.Callback = func(ctx context.Context, rdv peer.AddrInfo, target peer.ID) error {
			return dht.RequestCallback(ctx, h, rdv, target)
		}
	}
	lm := link.NewManager(h, cfg)
	lm.Start()
	return h, lm
}

// punchReady waits until h answers hole punches: until it has learnt a
// public observed address from the peer at addr and serves DCUtR. It
// returns why not, or "".
func punchReady(ctx context.Context, h host.Host, addr string) string {
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalProtocolsUpdated))
	if err != nil {
		return err.Error()
	}
	defer sub.Close()
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return err.Error()
	}
	if err := h.Connect(ctx, *ai); err != nil {
		return fmt.Sprintf("(rendezvous not reached: %v)", err)
	}
	for !slices.Contains(h.Mux().Protocols(), holepunch.Protocol) {
		select {
		case <-sub.Out():
		case <-ctx.Done():
			return "(never served DCUtR)"
		}
	}
	return ""
}

// connKind says how the host of lm is connected to p: every connection
// must be direct, and the first hop was reached by a hole punch.
func connKind(lm *link.Manager, p peer.ID) string {
	var kinds []string
	for _, c := range lm.Host().Network().ConnsToPeer(p) {
		kind := "direct"
		if c.Stat().Limited {
			kind = "relayed"
		}
		kinds = append(kinds, fmt.Sprintf("%s %s", kind, c.Stat().Direction))
	}
	return "conns: " + strings.Join(kinds, ", ")
}

// hopsFrom turns peer IDs into hops, from their descriptors in cache.
func hopsFrom(cache *dht.Cache, ids []peer.ID) ([]client.Hop, error) {
	byID := map[peer.ID]*descriptor.Relay{}
	for _, r := range cache.Relays() {
		byID[r.PeerID] = r
	}
	var hops []client.Hop
	for _, id := range ids {
		r, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("relay %s not in the cache", id.ShortString())
		}
		k, ok := r.OnionKeyAt(time.Now())
		if !ok {
			return nil, fmt.Errorf("relay %s has no valid onion key", id.ShortString())
		}
		hop := client.Hop{Peer: peer.AddrInfo{ID: id}, OnionKey: k.Key}
		for _, b := range r.Addrs {
			if a, err := ma.NewMultiaddrBytes(b); err == nil {
				hop.Peer.Addrs = append(hop.Peer.Addrs, a)
			}
		}
		hops = append(hops, hop)
	}
	return hops, nil
}
