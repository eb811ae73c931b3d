package hidden_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/router"
)

// directory resolves next hops for the relays and lists relays for paths.
type directory struct {
	mu    sync.Mutex
	addrs map[peer.ID]peer.AddrInfo
	descs map[peer.ID]*descriptor.Relay
}

func (d *directory) AddrInfo(_ context.Context, id peer.ID) (peer.AddrInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ai, ok := d.addrs[id]
	if !ok {
		return ai, fmt.Errorf("unknown relay %s", id)
	}
	return ai, nil
}

func (d *directory) Relays() []*descriptor.Relay {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*descriptor.Relay, 0, len(d.descs))
	for _, r := range d.descs {
		out = append(out, r)
	}
	return out
}

func (d *directory) remove(id peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.descs, id)
}

// relay is one relay of a test network: a router, and a DHT server on a
// host of its own (so that relays are linked only where circuits need).
type relay struct {
	dht    *dhttest.Member // its DHT node, on a host of its own
	host   host.Host       // the router's host
	router *router.Router
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *relay) id() peer.ID { return r.host.ID() }

func (r *relay) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.cancel()
	<-r.done
	r.host.Close()
	r.dht.Stop()
}

type testNet struct {
	t      testing.TB
	dir    *directory
	relays []*relay
	dhtNet *dhttest.Cluster
}

// newTestNet starts n relays, every one a guard, intro and rendezvous
// point that fetches and stores descriptors in the DHT.
func newTestNet(t testing.TB, n int) *testNet {
	tn := &testNet{t: t, dir: &directory{addrs: map[peer.ID]peer.AddrInfo{}, descs: map[peer.ID]*descriptor.Relay{}}}
	tn.dhtNet = dhttest.NewCluster(t, n, dhttest.Options{})
	now := time.Now()
	for _, dr := range tn.dhtNet.Relays {
		onion, err := circuit.GenerateOnionKey(rand.Reader, 1)
		if err != nil {
			t.Fatal(err)
		}
		h := newHost(t)
		rt, err := router.New(h, router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: tn.dir})
		if err != nil {
			t.Fatal(err)
		}
		rt.SetHSDirectory(hidden.DHTDirectory{Node: dr.Node})
		ctx, cancel := context.WithCancel(context.Background())
		r := &relay{dht: dr, host: h, router: rt, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(r.done); rt.Run(ctx) }()
		d := dhttest.Describe(h, descriptor.RoleRelay|descriptor.RoleGuard|descriptor.RoleIntro|descriptor.RoleRendezvous)
		d.OnionKeys = []descriptor.OnionKey{{Key: onion.Public, NotAfter: now.Add(24 * time.Hour).Unix()}}
		tn.dir.addrs[h.ID()] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
		tn.dir.descs[h.ID()] = d
		tn.relays = append(tn.relays, r)
	}
	t.Cleanup(func() {
		for _, r := range tn.relays {
			r.stop()
		}
	})
	return tn
}

func newHost(t testing.TB) host.Host {
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: k})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// endpoint is a node that builds circuits: a client or a service.
func (tn *testNet) endpoint() (hidden.Config, host.Host) {
	h := newHost(tn.t)
	lm := link.NewManager(h, link.Config{})
	lm.Start()
	tn.t.Cleanup(func() { lm.Close() })
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
		r.router.SetHSDirectory(d)
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
