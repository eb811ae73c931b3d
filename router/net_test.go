package router_test

import (
	"context"
	"crypto/rand"
	"fmt"
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
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/router"
)

// directory is a static Directory for tests.
type directory struct {
	mu sync.Mutex
	m  map[peer.ID]peer.AddrInfo
}

func (d *directory) AddrInfo(_ context.Context, id peer.ID) (peer.AddrInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ai, ok := d.m[id]
	if !ok {
		return ai, fmt.Errorf("unknown relay %s", id)
	}
	return ai, nil
}

type testRelay struct {
	host   host.Host
	router *router.Router
	onion  circuit.OnionKey
	cancel context.CancelFunc
	done   chan struct{}
	addrs  []ma.Multiaddr // if set, the only addresses clients use
}

func (r *testRelay) hop() client.Hop {
	addrs := r.addrs
	if addrs == nil {
		addrs = r.host.Addrs()
	}
	return client.Hop{Peer: peer.AddrInfo{ID: r.host.ID(), Addrs: addrs}, OnionKey: r.onion.Public}
}

// stop kills the relay as a crash would.
func (r *testRelay) stop() {
	r.cancel()
	<-r.done
	r.host.Close()
}

type testNet struct {
	dir    *directory
	relays []*testRelay
	client *link.Manager
}

func newHost(t testing.TB) host.Host {
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: k})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// newTestNet starts n relays (every relay is an exit that may reach
// loopback) and a client link manager.
func newTestNet(t testing.TB, n int, cfg func(i int, c *router.Config)) *testNet {
	tn := &testNet{dir: &directory{m: map[peer.ID]peer.AddrInfo{}}}
	for i := range n {
		h := newHost(t)
		onion, err := circuit.GenerateOnionKey(rand.Reader, 1)
		if err != nil {
			t.Fatal(err)
		}
		pol, err := router.ParseExitPolicy([]string{"accept *:*"}, router.AllowLoopback())
		if err != nil {
			t.Fatal(err)
		}
		c := router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: tn.dir, Exit: pol}
		if cfg != nil {
			cfg(i, &c)
		}
		rt, err := router.New(h, c)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &testRelay{host: h, router: rt, onion: onion, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(r.done); rt.Run(ctx) }()
		waitServing(t, h)
		tn.dir.mu.Lock()
		tn.dir.m[h.ID()] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
		tn.dir.mu.Unlock()
		tn.relays = append(tn.relays, r)
	}
	ch := newHost(t)
	tn.client = link.NewManager(ch, link.Config{})
	tn.client.Start()
	t.Cleanup(func() {
		tn.client.Close()
		ch.Close()
		for _, r := range tn.relays {
			select {
			case <-r.done:
			default:
				r.stop()
			}
		}
	})
	return tn
}

// waitServing waits until h accepts link channels (Run registers the
// protocol handler in its own goroutine).
func waitServing(t testing.TB, h host.Host) {
	for range 1000 {
		for _, p := range h.Mux().Protocols() {
			if p == link.Protocol {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("router never started serving")
}

func (tn *testNet) path(idx ...int) []client.Hop {
	var p []client.Hop
	for _, i := range idx {
		p = append(p, tn.relays[i].hop())
	}
	return p
}

func (tn *testNet) build(t testing.TB, idx ...int) *client.Circuit {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Build(ctx, tn.client, tn.path(idx...))
	if err != nil {
		t.Fatalf("build %v: %v", idx, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
