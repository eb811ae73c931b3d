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
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
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
// on the bridge then builds circuits whose middle or exit is that relay:
// the previous hop reaches it through a rendezvous and DCUtR, and the
// circuit's cells flow on the direct connection. At least 90 % of the
// builds must succeed.
func TestConeNATRelayCarriesCircuits(t *testing.T) {
	requireNetns(t)
	bin := buildObol(t)
	tp := newTopologyBase(t, 4, 11)
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
	ok, results := runCircuitClient(t, tp.ns[3], cache, paths)
	t.Logf("%d of %d builds through the relay behind the cone NAT succeeded", ok, len(paths))
	if ok*10 < len(paths)*9 {
		t.Fatalf("%d of %d builds succeeded, want at least 90 %%:\n%s", ok, len(paths), results)
	}
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
}

// runCircuitClient runs this test binary's TestCircuitClientHelper in
// namespace ns: it builds one circuit per path and reports each result.
// It returns how many builds succeeded, and the results.
func runCircuitClient(t *testing.T, ns, cache string, paths [][]peer.ID) (int, string) {
	t.Helper()
	req, err := json.Marshal(circuitClientRequest{Cache: cache, Paths: paths})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestCircuitClientHelper$", "-test.v")
	cmd.Env = append(os.Environ(), circuitClientEnv+"="+string(req))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("circuit client: %v\n%s", err, out)
	}
	ok := 0
	var results strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if _, res, found := strings.Cut(line, "build result: "); found {
			results.WriteString(res + "\n")
			if strings.HasPrefix(res, "ok") {
				ok++
			}
		}
	}
	return ok, results.String()
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
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := dht.NewHost(dht.HostConfig{Identity: k, Listen: []string{"/ip4/0.0.0.0/udp/0/quic-v1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lm := link.NewManager(h, link.Config{})
	lm.Start()
	defer lm.Close()
	for i, p := range req.Paths {
		hops, err := hopsFrom(cache, p)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		c, err := client.Build(ctx, lm, hops)
		cancel()
		if err != nil {
			fmt.Printf("build result: fail %d (%d hops): %v\n", i, len(hops), err)
			continue
		}
		fmt.Printf("build result: ok %d (%d hops) in %v\n", i, len(hops), time.Since(start).Round(time.Millisecond))
		c.Close()
	}
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
