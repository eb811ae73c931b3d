package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/router"
)

// A test network of relays that carry circuits: each relay is a libp2p
// host on a loopback address of its own /16 (127.N.0.1), a DHT server
// publishing its descriptor (onion key, roles, exit ports), and a router.

// relayDirectory resolves next hops for the routers.
type relayDirectory struct {
	mu sync.Mutex
	m  map[peer.ID]peer.AddrInfo
}

func (d *relayDirectory) AddrInfo(_ context.Context, id peer.ID) (peer.AddrInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ai, ok := d.m[id]
	if !ok {
		return ai, fmt.Errorf("unknown relay %s", id)
	}
	return ai, nil
}

type circuitRelay struct {
	host   host.Host
	node   *dht.Node
	desc   *descriptor.Relay
	gossip *view.Gossip // nil without the DHT
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func (r *circuitRelay) id() peer.ID { return r.host.ID() }

// stop kills the relay as a crash would.
func (r *circuitRelay) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.done.Wait()
	r.node.Close()
	r.host.Close()
	r.cancel = nil
}

type circuitNet struct {
	relays []*circuitRelay
	dir    *relayDirectory
}

// circuitNetOptions shape a test network.
type circuitNetOptions struct {
	roles func(i int) descriptor.Role // default: guard and exit
	dht   bool                        // join a DHT and publish descriptors
}

// newCircuitNet starts n relays and stops them at the end of the test.
func newCircuitNet(t testing.TB, n int, opts circuitNetOptions) *circuitNet {
	t.Helper()
	if opts.roles == nil {
		opts.roles = func(int) descriptor.Role { return descriptor.RoleGuard | descriptor.RoleExit }
	}
	cn := &circuitNet{dir: &relayDirectory{m: map[peer.ID]peer.AddrInfo{}}}
	t.Cleanup(cn.close)
	for i := range n {
		r, err := cn.startRelay(i, opts)
		if err != nil {
			t.Fatalf("relay %d: %v", i, err)
		}
		cn.relays = append(cn.relays, r)
	}
	if opts.dht {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i, r := range cn.relays {
			if err := waitDescriptor(ctx, cn.relays[(i+1)%n].node, r.id()); err != nil {
				t.Fatalf("relay %d never published: %v", i, err)
			}
		}
		for i, r := range cn.relays {
			for r.gossip.Set().Len() < n {
				select {
				case <-ctx.Done():
					t.Fatalf("relay %d's view holds %d of %d relays", i, r.gossip.Set().Len(), n)
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
	}
	return cn
}

func (cn *circuitNet) close() {
	for _, r := range cn.relays {
		r.stop()
	}
}

func (cn *circuitNet) startRelay(i int, opts circuitNetOptions) (*circuitRelay, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	ip := fmt.Sprintf("127.%d.0.1", i+1)
	h, err := dht.NewHost(dht.HostConfig{Identity: key,
		Listen: []string{"/ip4/" + ip + "/udp/0/quic-v1", "/ip4/" + ip + "/tcp/0"}})
	if err != nil {
		return nil, err
	}
	r := &circuitRelay{host: h}
	var boot []peer.AddrInfo
	if i > 0 {
		boot = []peer.AddrInfo{{ID: cn.relays[0].id(), Addrs: cn.relays[0].host.Addrs()}}
	}
	if r.node, err = dht.Open(h, dht.Config{Mode: dht.ModeServer, Bootstrap: boot}); err != nil {
		h.Close()
		return nil, err
	}
	onion, err := circuit.GenerateOnionKey(rand.Reader, 1)
	if err != nil {
		return nil, err
	}
	roles := opts.roles(i) | descriptor.RoleRelay
	cfg := router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: cn.dir}
	if roles.Has(descriptor.RoleExit) {
		if cfg.Exit, err = router.ParseExitPolicy([]string{"accept *:*"}, router.AllowLoopback()); err != nil {
			return nil, err
		}
	}
	rt, err := router.New(h, cfg)
	if err != nil {
		return nil, err
	}
	r.desc = describeRelay(h, roles, onion.Public, cfg.Exit)
	cn.dir.mu.Lock()
	cn.dir.m[h.ID()] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
	cn.dir.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done.Go(func() { rt.Run(ctx) })
	if opts.dht {
		if len(boot) > 0 {
			bctx, bcancel := context.WithTimeout(ctx, 20*time.Second)
			err := r.node.Bootstrap(bctx)
			bcancel()
			if err != nil {
				r.stop()
				return nil, err
			}
		}
		// Relays spread descriptors and serve their view, from which a
		// client takes its own.
		r.gossip = view.NewGossip(h, view.NewSet(time.Now), view.GossipConfig{Bootstrap: boot, AllowSameSubnet: true})
		r.done.Go(func() { r.gossip.Run(ctx) })
		pub := dht.NewPublisher(r.node, signer(key, *r.desc), time.Minute)
		pub.AlsoPublish(r.gossip.Publish)
		r.done.Go(func() { pub.Run(ctx) })
	}
	return r, nil
}

// describeRelay is h's descriptor body: addresses, onion key, roles and
// the exit policy's port summary.
func describeRelay(h host.Host, roles descriptor.Role, onion [32]byte, exit *router.ExitPolicy) *descriptor.Relay {
	d := &descriptor.Relay{Version: descriptor.Version, PeerID: h.ID(), Roles: roles,
		Bandwidth: 10 << 20, Protocols: []uint16{circuit.ProtocolVersion}, Software: "obol-test",
		OnionKeys: []descriptor.OnionKey{{Key: onion, NotAfter: time.Now().Add(7 * 24 * time.Hour).Unix()}}}
	for _, a := range h.Addrs() {
		d.Addrs = append(d.Addrs, a.Bytes())
	}
	if exit != nil {
		for _, p := range exit.Summary() {
			d.ExitPorts = append(d.ExitPorts, descriptor.PortRange{Lo: p.Lo, Hi: p.Hi})
		}
	}
	return d
}

func signer(key crypto.PrivKey, body descriptor.Relay) dht.SignFunc {
	return func(seq uint64, now time.Time) ([]byte, error) {
		d := body
		d.Seq, d.Published, d.Expires = seq, now.Unix(), now.Add(time.Hour).Unix()
		return descriptor.Sign(key, &d)
	}
}

func waitDescriptor(ctx context.Context, n *dht.Node, id peer.ID) error {
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, _, err := n.LookupRelay(lctx, id)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// bootstrap is the /p2p/ address of relay 0, for --bootstrap.
func (cn *circuitNet) bootstrap() string {
	r := cn.relays[0]
	return r.host.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + r.id().String())).String()
}

// descriptors is a static directory of the relays' descriptors.
func (cn *circuitNet) descriptors() client.Directory {
	var ds []*descriptor.Relay
	for _, r := range cn.relays {
		ds = append(ds, r.desc)
	}
	return client.DirectoryFunc(func() []*descriptor.Relay { return ds })
}

// newTestManager starts a client host, link manager and circuit manager
// over dir, and runs the manager until the end of the test.
func newTestManager(t testing.TB, dir client.Directory, cfg client.Config) *client.CircuitManager {
	t.Helper()
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: key})
	if err != nil {
		t.Fatal(err)
	}
	links := link.NewManager(h, link.Config{})
	links.Start()
	cfg.Links, cfg.Directory = links, dir
	if cfg.Tick == 0 {
		cfg.Tick = 20 * time.Millisecond
	}
	m, err := client.NewCircuitManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		links.Close()
		h.Close()
	})
	return m
}

// httpServer serves /bytes/N (N zero bytes) and /hello on loopback.
func httpServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 64<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello through obol\n") })
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		w.Header().Set("Content-Length", fmt.Sprint(n))
		for n > 0 {
			k, err := w.Write(zeros[:min(n, len(zeros))])
			if err != nil {
				return
			}
			n -= k
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
