package obol_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/localnet"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/pay"
)

// Addresses of the watched network. Every party has a loopback address
// of its own, as hosts of a real network would, and every socket it
// opens is bound to it: the mint tells who connects by the source
// address alone.
const (
	watchedRelays = 6
	mintIP        = "127.0.0.40"
	faucetIP      = "127.0.0.50" // tops up the test's wallets, before any circuit
	clientIP      = "127.0.0.30" // a client that reaches the mint through circuits
	serviceIP     = "127.0.0.32" // a hidden service that does
	directIP      = "127.0.0.31" // the control: a client that reaches the mint directly
)

// relayIP is relay i's address: its libp2p host and its wallet's
// direct connections to the mint. exitIP is the outbound address an
// exit's streams leave from.
func relayIP(i int) string { return fmt.Sprintf("127.0.0.%d", 20+i) }
func exitIP(i int) string  { return fmt.Sprintf("127.0.1.%d", 20+i) }

// watchedNet is a paid network whose mint records every connection's
// source. The relays settle directly, each from its own address, so that
// the only requests that come from an exit's outbound address are those
// the exit carried for others, through circuits.
type watchedNet struct {
	mw      *mintWatch
	network *localnet.Network
	exits   map[string]int // exit outbound address → relay
}

func startWatchedNet(t *testing.T, ctx context.Context) *watchedNet {
	wn := &watchedNet{mw: startMintWatchAt(t, mintIP), exits: map[string]int{}}
	network, err := localnet.Start(ctx, localnet.Config{Relays: watchedRelays, Addr: relayIP,
		Payment: &pay.RelayPayment{Mint: wn.mw.url, PerMiB: 1000, PerCircuit: 1000, DirectMintConnectionUnsafe: true,
			SettleDelay: 10 * time.Millisecond, SettleMaxDelay: 100 * time.Millisecond},
		Configure: func(i int, c *node.RelayConfig) {
			// TCP only: a TCP dial leaves from the host's listen address,
			// where a QUIC dial on loopback leaves from the route's
			// source, 127.0.0.1, and the relays would see every node
			// there.
			c.Listen = []string{"/ip4/" + relayIP(i) + "/tcp/0"}
			c.Payment.HTTPClient = boundClient(relayIP(i))
			if c.Roles.Has(descriptor.RoleExit) {
				c.ExitDial = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(exitIP(i))}}).DialContext
				wn.exits[exitIP(i)] = i
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(network.Close)
	wn.network = network
	return wn
}

// client is a paying client whose host lives on ip: its libp2p host
// listens (and so dials) there, and its wallet's direct connections, if
// it is allowed any, leave from there.
func (wn *watchedNet) client(t *testing.T, ctx context.Context, ip string, direct bool, prebuilt int, dataDir string) *obol.Client {
	dir := t.TempDir()
	w, err := pay.OpenWallet(pay.WalletConfig{Dir: dir, Mint: wn.mw.url, DirectMintConnectionUnsafe: true, HTTPClient: boundClient(faucetIP)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.TopUp(ctx, 50_000); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := obol.NewClient(obol.ClientConfig{Bootstrap: wn.network.Bootstrap(), AllowSameSubnet: true, MinGuardAge: -1, MinExitAge: -1,
		Sample: watchedRelays, Prebuilt: prebuilt, DataDir: dataDir, Listen: []string{"/ip4/" + ip + "/tcp/0"},
		Pay: &obol.PayConfig{WalletDir: dir, DirectMintConnectionUnsafe: direct, HTTPClient: boundClient(ip)}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startClient runs c until stop, which returns Run's error.
func startClient(t *testing.T, ctx context.Context, c *obol.Client) (stop func() error) {
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- c.Run(cctx) }()
	stop = sync.OnceValue(func() error { cancel(); return <-errc })
	t.Cleanup(func() { stop() })
	return stop
}

// pull reads n bytes from a local server through one of c's circuits:
// more than the relays' free allowance, so that they must be paid.
func pull(t *testing.T, ctx context.Context, c *obol.Client, addr string, n int64) {
	t.Helper()
	conn, err := c.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := io.Copy(io.Discard, conn); err != nil || got != n {
		t.Fatalf("read %d bytes of %d from %s (%v)", got, n, addr, err)
	}
}

// byteServer serves n bytes to every connection, on loopback.
func byteServer(t *testing.T, n int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveBytes(ln, n)
	return ln.Addr().String()
}

// mark is the position in the mint's log of the next request.
func (w *mintWatch) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.log)
}

// since are the requests the mint saw from mark on.
func (w *mintWatch) since(mark int) []mintRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]mintRequest(nil), w.log[mark:]...)
}

// byIP groups requests by source address: requests by path.
func byIP(reqs []mintRequest) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, r := range reqs {
		if out[r.ip] == nil {
			out[r.ip] = map[string]int{}
		}
		out[r.ip][r.path]++
	}
	return out
}

// fromExits are the requests that came from the exits' outbound
// addresses, by path: those carried through circuits.
func (wn *watchedNet) fromExits(reqs []mintRequest) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		if _, ok := wn.exits[r.ip]; ok {
			out[pathClass(r.path)]++
		}
	}
	return out
}

// pathClass names a request by its path, keys of any keyset as one.
func pathClass(p string) string {
	if strings.HasPrefix(p, "/v1/keys/") {
		return "/v1/keys/"
	}
	return p
}

// unseen is what the mint would say after watching reqs for ip: an error
// naming what it saw from ip, and what it saw from addresses it cannot
// put down to a relay, an exit or another party of the test (a socket
// of this process that reached the mint unbound, without a circuit).
func (wn *watchedNet) unseen(reqs []mintRequest, ip string, others ...string) error {
	known := map[string]bool{faucetIP: true}
	for i := range watchedRelays {
		known[relayIP(i)] = true
	}
	for a := range wn.exits {
		known[a] = true
	}
	for _, a := range others {
		known[a] = true
	}
	var bad []string
	for src, paths := range byIP(reqs) {
		switch {
		case src == ip:
			bad = append(bad, fmt.Sprintf("from the watched address %s: %v", src, paths))
		case !known[src]:
			bad = append(bad, fmt.Sprintf("from %s, neither a relay nor an exit: %v", src, paths))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("the mint saw %s", strings.Join(bad, "; "))
}

// saw checks that the requests of a party's operations reached the mint:
// its keyset fetch, a swap (a pool fill or a funding), and at least one
// request after its shutdown began (its settlement there).
func saw(t *testing.T, who string, got, atShutdown map[string]int) {
	t.Helper()
	for _, p := range []string{"/v1/keysets", "/v1/swap"} {
		if got[p] == 0 {
			t.Errorf("the mint saw no %s of the %s (%v): the check of its address proves nothing", p, who, got)
		}
	}
	n := 0
	for _, k := range atShutdown {
		n += k
	}
	if n == 0 {
		t.Errorf("the mint saw nothing of the %s's settlement at shutdown", who)
	}
}

// waitMint waits until the requests the mint saw since mark satisfy ok.
func waitMint(t *testing.T, ctx context.Context, mw *mintWatch, mark int, what string, ok func([]mintRequest) bool) {
	t.Helper()
	for !ok(mw.since(mark)) {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Written as a mint would try it, which notes the source address of
// every connection and knows the address of every relay and exit of the
// network. A client, a hidden service and a control client each live on
// an address of their own (127.0.0.30–32), with their libp2p hosts and
// any direct connection bound there; the relays on 127.0.0.20–25, their
// exits' streams leaving from 127.0.1.2x. The client funds channels,
// pays circuits that carry bytes and settles at shutdown; the service
// keeps introduction points and standby channels, and answers visits.
// The mint sees the operations of both — through exits — and not one
// connection from their addresses, nor from any address it cannot put
// down to a relay or an exit. The control, the same client allowed a
// direct connection, is seen by the same check.
func TestMintNeverSeesClientsOrServices(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	wn := startWatchedNet(t, ctx)
	mw := wn.mw
	data := byteServer(t, 512<<10)

	// The control runs from the start: it visits the hidden service.
	startMark := mw.mark()
	direct := wn.client(t, ctx, directIP, true, 0, "")
	stopDirect := startClient(t, ctx, direct)
	if err := direct.Joined(ctx); err != nil {
		t.Fatal(err)
	}

	watched := map[string]*victim{} // the client and the service, for the colluders
	t.Run("client", func(t *testing.T) {
		mark := mw.mark()
		dataDir := t.TempDir()
		c := wn.client(t, ctx, clientIP, false, 0, dataDir)
		stop := startClient(t, ctx, c)
		pull(t, ctx, c, data, 512<<10)
		if c.Spent() == 0 {
			t.Fatal("the client paid nothing")
		}
		v := wn.watch(t, ctx, clientIP, mark)
		shutdown := mw.mark()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		reqs := mw.since(mark)
		if err := wn.unseen(reqs, clientIP, directIP); err != nil {
			t.Error(err)
		}
		saw(t, "client", wn.fromExits(reqs), wn.fromExits(mw.since(shutdown)))
		t.Logf("through exits the mint saw the client's %v", wn.fromExits(reqs))
		v.guards, v.until = firstHops(t, dataDir), mark+len(reqs)
		watched["client"] = v
		if n := len(v.guards); n > 3 {
			t.Errorf("the client's circuits start at %d relays, more than one guard set", n)
		}
		// Paying shows the client to no relay its circuits do not: the
		// mint circuits start at the exit circuits' guards.
		exits, _ := client.SavedGuards(filepath.Join(dataDir, obol.GuardFile))
		mints, _ := client.SavedGuards(filepath.Join(dataDir, obol.MintGuardFile))
		slices.SortFunc(exits, func(a, b peer.ID) int { return strings.Compare(string(a), string(b)) })
		slices.SortFunc(mints, func(a, b peer.ID) int { return strings.Compare(string(a), string(b)) })
		if len(mints) == 0 || !slices.Equal(exits, mints) {
			t.Errorf("the mint circuits' guards %v, the exit circuits' %v: want the same relays", mints, exits)
		}
	})

	t.Run("service", func(t *testing.T) {
		mark := mw.mark()
		dataDir := t.TempDir()
		s := wn.client(t, ctx, serviceIP, false, -1, dataDir)
		stop := startClient(t, ctx, s)
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		ln, err := s.Listen(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		// Each visit moves less than the relays' free allowance: a service
		// just started may still be funding its standby channels, one
		// after another at random pauses, and its rendezvous circuits
		// wait for them before they pay (a visit that needs more than the
		// allowance sooner is torn down after the relays' grace period).
		const visit = 32 << 10
		go serveBytes(ln, visit)
		host, _, err := net.SplitHostPort(ln.Addr().String()) // "<name>.obol"
		if err != nil {
			t.Fatal(err)
		}
		const visits = 3
		for range visits {
			pull(t, ctx, direct, net.JoinHostPort(host, "80"), visit)
		}
		// The service funds its standby channels and its introduction
		// circuits' channels at times of its own: wait for a funding.
		waitMint(t, ctx, mw, mark, "a swap of the service through an exit", func(reqs []mintRequest) bool {
			return wn.fromExits(reqs)["/v1/swap"] > 0 || wn.unseen(reqs, serviceIP, directIP) != nil
		})
		// Its channels at relays other than its first hops are opened on
		// introduction and rendezvous circuits.
		v := wn.watch(t, ctx, serviceIP, mark)
		shutdown := mw.mark()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		reqs := mw.since(mark)
		if err := wn.unseen(reqs, serviceIP, directIP); err != nil {
			t.Error(err)
		}
		saw(t, "service", wn.fromExits(reqs), wn.fromExits(mw.since(shutdown)))
		t.Logf("through exits the mint saw the service's %v", wn.fromExits(reqs))
		v.guards, v.until = firstHops(t, dataDir), mark+len(reqs)
		watched["service"] = v
		// Its hidden-service and mint circuits start at the guards of its
		// exit circuits, or these at theirs.
		if n := len(v.guards); n > 3 {
			t.Errorf("the service's circuits start at %d relays, more than one guard set", n)
		}
	})

	// As a relay working with the mint would try it, for each relay in
	// turn: the client of a channel is named only by its first hops.
	// The control pays relays beyond their free allowances: channels
	// funded straight from its address, which the join must name.
	pull(t, ctx, direct, data, 512<<10)
	for _, who := range []string{"client", "service"} {
		t.Run("relay with the mint/"+who, func(t *testing.T) {
			v := watched[who]
			if v == nil {
				t.Skip("needs the " + who + " subtest")
			}
			colluders(t, wn, *v)
		})
	}

	t.Run("direct control", func(t *testing.T) {
		pull(t, ctx, direct, data, 512<<10)
		shutdown := mw.mark()
		if err := stopDirect(); err != nil {
			t.Fatal(err)
		}
		reqs := mw.since(startMark)
		if err := wn.unseen(reqs, directIP); err == nil || !strings.Contains(err.Error(), "watched address "+directIP) {
			t.Fatalf("the check finds nothing of a client that reaches the mint directly (%v)", err)
		}
		got := map[string]int{}
		for p, n := range byIP(reqs)[directIP] {
			got[pathClass(p)] += n
		}
		saw(t, "control", got, byIP(mw.since(shutdown))[directIP])
		t.Logf("the mint saw the control's address: %v", got)
	})
}
