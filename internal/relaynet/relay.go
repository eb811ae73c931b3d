package relaynet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/router"
)

// Relay is one relay of a network: a libp2p host and its router.
type Relay struct {
	Index  int
	Key    crypto.PrivKey // the host's identity
	Host   host.Host
	Router *router.Router
	Onion  circuit.OnionKey
	Desc   *descriptor.Relay // as the directory lists it
	Addrs  []ma.Multiaddr    // what others dial: the host's, or its forwarder's

	cancel   context.CancelFunc
	ctx      context.Context
	wg       sync.WaitGroup
	deferred []func()
}

// ID is the relay's peer ID.
func (r *Relay) ID() peer.ID { return r.Host.ID() }

// Hop is the relay as a path hop.
func (r *Relay) Hop() client.Hop {
	return client.Hop{Peer: peer.AddrInfo{ID: r.Host.ID(), Addrs: r.Addrs}, OnionKey: r.Onion.Public}
}

// Go runs f until the relay stops; Stop waits for it.
func (r *Relay) Go(f func(ctx context.Context)) {
	ctx := r.ctx
	r.wg.Go(func() { f(ctx) })
}

// Defer runs f when the relay stops, after its goroutines have ended and
// before its host closes.
func (r *Relay) Defer(f func()) { r.deferred = append(r.deferred, f) }

// Running reports whether the relay has been started and not stopped.
func (r *Relay) Running() bool { return r.cancel != nil }

// Stop kills the relay as a crash would: its router and goroutines end,
// its host closes, nothing is said to its peers. Idempotent.
func (r *Relay) Stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.wg.Wait()
	r.cancel = nil
	for i := len(r.deferred) - 1; i >= 0; i-- {
		r.deferred[i]()
	}
	r.deferred = nil
	r.Host.Close()
}

// newHost starts a libp2p host on loopback with a fresh identity.
func newHost(cfg dht.HostConfig) (crypto.PrivKey, host.Host, error) {
	k, _, err := crypto.GenerateEd25519Key(randReader)
	if err != nil {
		return nil, nil, err
	}
	cfg.Identity = k
	h, err := dht.NewHost(cfg)
	return k, h, err
}

// start starts relay r on a new host: its router with the network's
// options, its forwarder, its directory entries.
func (n *Network) start(r *Relay) error {
	var hc dht.HostConfig
	if n.opts.Host != nil {
		hc = n.opts.Host(r.Index)
	}
	k, h, err := newHost(hc)
	if err != nil {
		return err
	}
	old := peer.ID("")
	if r.Host != nil {
		old = r.Host.ID()
	}
	r.Key, r.Host, r.Addrs, r.Desc = k, h, h.Addrs(), nil
	roles := n.opts.Roles(r.Index) | descriptor.RoleRelay
	cfg := router.Config{OnionKeys: []circuit.OnionKey{r.Onion}, Directory: n.Dir}
	if n.opts.RelayDirectory != nil {
		cfg.Directory = n.opts.RelayDirectory(r.Index)
	}
	if roles.Has(descriptor.RoleExit) {
		if cfg.Exit, err = router.ParseExitPolicy([]string{"accept *:*"}, append([]router.PolicyOption{router.AllowLoopback()}, n.opts.Exit...)...); err != nil {
			h.Close()
			return err
		}
	}
	if n.opts.Router != nil {
		n.opts.Router(r, &cfg)
	}
	if r.Router, err = router.New(h, cfg); err != nil {
		h.Close()
		return err
	}
	serving, err := watchServing(h)
	if err != nil {
		h.Close()
		return err
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if n.opts.Setup != nil {
		err = n.opts.Setup(r)
	}
	if err == nil {
		r.Go(func(ctx context.Context) { r.Router.Run(ctx) })
		err = serving()
	}
	if err == nil {
		err = n.front(r)
	}
	if err != nil {
		r.Stop()
		return err
	}
	r.Desc = describe(h.ID(), r.Addrs, roles, r.Onion.Public, cfg.Exit)
	n.Dir.Set(h.ID(), r.Addrs)
	n.Dir.replace(old, r.Desc)
	return nil
}

// watchServing subscribes to h's protocol updates; the function it
// returns waits until h accepts link channels (the router registers its
// handler when it runs).
func watchServing(h host.Host) (func() error, error) {
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalProtocolsUpdated))
	if err != nil {
		return nil, err
	}
	return func() error {
		defer sub.Close()
		if slices.Contains(h.Mux().Protocols(), link.Protocol) {
			return nil
		}
		timeout := time.After(time.Minute)
		for {
			select {
			case e := <-sub.Out():
				if slices.Contains(e.(event.EvtLocalProtocolsUpdated).Added, link.Protocol) {
					return nil
				}
			case <-timeout:
				return fmt.Errorf("relaynet: router of %s never started serving", h.ID())
			}
		}
	}, nil
}

// describe is a relay's descriptor body: the addresses others dial, onion key, roles and the
// exit policy's port summary.
func describe(id peer.ID, addrs []ma.Multiaddr, roles descriptor.Role, onion [32]byte, exit *router.ExitPolicy) *descriptor.Relay {
	d := &descriptor.Relay{Version: descriptor.Version, PeerID: id, Roles: roles,
		Bandwidth: 10 << 20, Protocols: []uint16{circuit.ProtocolVersion}, Software: "obol-test",
		OnionKeys: []descriptor.OnionKey{{Key: onion, NotAfter: time.Now().Add(7 * 24 * time.Hour).Unix()}}}
	for _, a := range addrs {
		d.Addrs = append(d.Addrs, a.Bytes())
	}
	if len(d.Addrs) > descriptor.MaxAddrs {
		d.Addrs = d.Addrs[:descriptor.MaxAddrs]
	}
	if exit != nil {
		for _, p := range exit.Summary() {
			d.ExitPorts = append(d.ExitPorts, descriptor.PortRange{Lo: p.Lo, Hi: p.Hi})
		}
	}
	return d
}

// NewHost starts a libp2p host on loopback with a fresh identity.
func NewHost() (host.Host, error) {
	_, h, err := newHost(dht.HostConfig{})
	return h, err
}

// TestHost is NewHost for a test: it fails the test on error and closes
// the host at the test's end.
func TestHost(t TB) host.Host {
	t.Helper()
	h, err := NewHost()
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// RunRouter runs rt, on host h, until stop is called, and returns once
// it accepts link channels.
func RunRouter(h host.Host, rt *router.Router) (stop func(), err error) {
	serving, err := watchServing(h)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rt.Run(ctx) }()
	stop = func() { cancel(); <-done }
	if err := serving(); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}
