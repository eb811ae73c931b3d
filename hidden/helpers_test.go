package hidden_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht/dhttest"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/relaynet"
)

// relay is one relay of a test network: a router, and a DHT server on a
// host of its own (so that relays are linked only where circuits need).
type relay struct {
	*relaynet.Relay
	dht *dhttest.Member // its DHT node, on a host of its own
}

func (r *relay) id() peer.ID { return r.ID() }

// stop kills the relay and its DHT node as a crash would.
func (r *relay) stop() {
	r.Stop()
	r.dht.Stop()
}

type testNet struct {
	t      testing.TB
	net    *relaynet.Network
	dir    *relaynet.Directory
	relays []*relay
	dhtNet *dhttest.Cluster
}

// newTestNet starts n relays, every one a guard, intro and rendezvous
// point that fetches and stores descriptors in the DHT.
func newTestNet(t testing.TB, n int) *testNet { return newHSNet(t, n, 0) }

// newHSNet is newTestNet with more roles for every relay.
func newHSNet(t testing.TB, n int, more descriptor.Role) *testNet {
	tn := &testNet{t: t, dhtNet: dhttest.NewCluster(t, n, dhttest.Options{})}
	tn.net = relaynet.Start(t, n, relaynet.Options{
		Roles: func(int) descriptor.Role {
			return descriptor.RoleGuard | descriptor.RoleIntro | descriptor.RoleRendezvous | more
		},
		Setup: func(r *relaynet.Relay) error {
			r.Router.SetHSDirectory(hidden.DHTDirectory{Node: tn.dhtNet.Relays[r.Index].Node})
			return nil
		},
	})
	tn.dir = tn.net.Dir
	for i, r := range tn.net.Relays {
		tn.relays = append(tn.relays, &relay{Relay: r, dht: tn.dhtNet.Relays[i]})
	}
	t.Cleanup(func() {
		for _, r := range tn.relays {
			r.stop()
		}
	})
	return tn
}

func newHost(t testing.TB) host.Host { return relaynet.TestHost(t) }

// endpoint is a node that builds circuits: a client or a service.
func (tn *testNet) endpoint() (hidden.Config, host.Host) {
	lm, h, err := tn.net.NewLinks()
	if err != nil {
		tn.t.Fatal(err)
	}
	return hidden.Config{Links: lm, Directory: tn.dir}, h
}

func (tn *testNet) listen(key ed25519.PrivateKey) (*hidden.Listener, host.Host) {
	n, h := tn.endpoint()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Config: n, Key: key})
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { l.Close() })
	return l, h
}

func (tn *testNet) client() (*hidden.Connector, host.Host) {
	n, h := tn.endpoint()
	c, err := hidden.NewConnector(n)
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { c.Close() })
	return c, h
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// recordingDir is a relay's DHTDirectory that also keeps every record the
// relay stores: what DHT nodes get to see.
type recordingDir struct {
	hidden.DHTDirectory
	mu   sync.Mutex
	recs [][]byte
}

func (d *recordingDir) StoreHS(ctx context.Context, rec []byte) error {
	d.mu.Lock()
	d.recs = append(d.recs, append([]byte(nil), rec...))
	d.mu.Unlock()
	return d.DHTDirectory.StoreHS(ctx, rec)
}

func (d *recordingDir) stored() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][]byte(nil), d.recs...)
}

// record replaces every relay's directory with a recording one.
func (tn *testNet) record() []*recordingDir {
	var out []*recordingDir
	for _, r := range tn.relays {
		d := &recordingDir{DHTDirectory: hidden.DHTDirectory{Node: r.dht.Node}}
		r.Router.SetHSDirectory(d)
		out = append(out, d)
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches http://<addr>/ through c and returns the body.
func get(t testing.TB, c *hidden.Connector, addr string) ([]byte, error) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: c.Dial, DisableKeepAlives: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// serveHTTP serves body on l until the test ends.
func serveHTTP(t testing.TB, l net.Listener, body []byte) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}
