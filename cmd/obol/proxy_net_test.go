package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/internal/relaynet"
)

// A test network of relays that carry circuits: each relay is a libp2p
// host on a loopback address of its own /16 (127.N.0.1), a DHT server
// publishing its descriptor (onion key, roles, exit ports), and a router.

type circuitRelay struct {
	*relaynet.Relay
	node   *dht.Node
	gossip *view.Gossip // nil without the DHT
}

func (r *circuitRelay) id() peer.ID { return r.ID() }

// stop kills the relay as a crash would.
func (r *circuitRelay) stop() { r.Stop() }

type circuitNet struct {
	net    *relaynet.Network
	relays []*circuitRelay
}

// circuitNetOptions shape a test network.
type circuitNetOptions struct {
	roles func(i int) descriptor.Role // default: guard and exit
	dht   bool                        // join a DHT and publish descriptors
}

// newCircuitNet starts n relays and stops them at the end of the test.
func newCircuitNet(t testing.TB, n int, opts circuitNetOptions) *circuitNet {
	t.Helper()
	cn := &circuitNet{}
	cn.net = relaynet.Start(t, n, relaynet.Options{
		Roles: opts.roles,
		Host: func(i int) dht.HostConfig {
			ip := fmt.Sprintf("127.%d.0.1", i+1)
			return dht.HostConfig{Listen: []string{"/ip4/" + ip + "/udp/0/quic-v1", "/ip4/" + ip + "/tcp/0"}}
		},
		Setup: func(r *relaynet.Relay) error {
			node, err := dht.Open(r.Host, dht.Config{Mode: dht.ModeServer, Bootstrap: cn.boot(r.Index)})
			if err != nil {
				return err
			}
			r.Defer(func() { node.Close() })
			cn.relays = append(cn.relays, &circuitRelay{Relay: r, node: node})
			return nil
		},
	})
	if opts.dht {
		cn.publish(t)
	}
	return cn
}

// boot is where relay i joins: relay 0, for all but relay 0.
func (cn *circuitNet) boot(i int) []peer.AddrInfo {
	if i == 0 {
		return nil
	}
	return []peer.AddrInfo{{ID: cn.relays[0].id(), Addrs: cn.relays[0].Host.Addrs()}}
}

// publish joins every relay to the DHT through relay 0, spreads
// descriptors into it and over gossip, and waits until every relay's
// descriptor can be looked up and every relay's view holds them all.
func (cn *circuitNet) publish(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, r := range cn.relays {
		boot := cn.boot(i)
		if len(boot) > 0 {
			bctx, bcancel := context.WithTimeout(ctx, 20*time.Second)
			err := r.node.Bootstrap(bctx)
			bcancel()
			if err != nil {
				t.Fatalf("relay %d: %v", i, err)
			}
		}
		// Relays spread descriptors and serve their view, from which a
		// client takes its own.
		r.gossip = view.NewGossip(r.Host, view.NewSet(time.Now), view.GossipConfig{Bootstrap: boot, AllowSameSubnet: true})
		r.Go(func(ctx context.Context) { r.gossip.Run(ctx) })
		pub := dht.NewPublisher(r.node, signer(r.Key, *r.Desc), time.Minute)
		pub.AlsoPublish(r.gossip.Publish)
		r.Go(func(ctx context.Context) { pub.Run(ctx) })
	}
	n := len(cn.relays)
	for i, r := range cn.relays {
		if err := dht.WaitPublished(ctx, cn.relays[(i+1)%n].node, r.id()); err != nil {
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

func signer(key crypto.PrivKey, body descriptor.Relay) dht.SignFunc {
	return func(seq uint64, now time.Time) ([]byte, error) {
		d := body
		d.Seq, d.Published, d.Expires = seq, now.Unix(), now.Add(time.Hour).Unix()
		return descriptor.Sign(key, &d)
	}
}

// bootstrap is the /p2p/ address of relay 0, for --bootstrap.
func (cn *circuitNet) bootstrap() string {
	r := cn.relays[0]
	return r.Host.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + r.id().String())).String()
}

// descriptors is a directory of the relays' descriptors.
func (cn *circuitNet) descriptors() client.Directory { return cn.net.Dir }

// newTestManager starts a client host, link manager and circuit manager
// over dir, and runs the manager until the end of the test.
func newTestManager(t testing.TB, dir client.Directory, cfg client.Config) *client.CircuitManager {
	t.Helper()
	h, err := relaynet.NewHost()
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
