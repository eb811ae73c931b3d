// Package dhttest builds clusters of real obol DHT nodes on loopback for
// tests and benchmarks: libp2p hosts over QUIC, kad-dht servers with
// obol's validators, and relays that publish real signed descriptors.
package dhttest

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/view"
)

// Options shape a test network.
type Options struct {
	Lifetime time.Duration // descriptor lifetime (default 1h)
	Interval time.Duration // republish interval (default Lifetime/4)
	Roles    func(i int) descriptor.Role
	Now      func() time.Time
	// Gossip runs each relay's view service (package view): descriptors
	// spread on the gossip topic as well as into the DHT, and each relay
	// serves its view. Test networks are on loopback, so view syncs may
	// take sources from one network.
	Gossip bool
	// OnQuery, if set, sees the key of every DHT query relay i serves.
	OnQuery func(relay int, key string)
}

func (o *Options) defaults() {
	if o.Lifetime == 0 {
		o.Lifetime = time.Hour
	}
	if o.Interval == 0 {
		o.Interval = o.Lifetime / 4
	}
	if o.Roles == nil {
		o.Roles = func(int) descriptor.Role { return descriptor.RoleRelay | descriptor.RoleGuard }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Member is one relay of a test cluster.
type Member struct {
	Key       crypto.PrivKey
	Host      host.Host
	Node      *dht.Node
	Publisher *dht.Publisher
	View      *view.Set    // with Options.Gossip
	Gossip    *view.Gossip // with Options.Gossip
	cancel    context.CancelFunc
	done      chan struct{}
}

// ID is the relay's peer ID.
func (r *Member) ID() peer.ID { return r.Host.ID() }

// Stop stops publishing and closes the relay's DHT node and host, as a
// crash would: nothing is withdrawn from the DHT.
func (r *Member) Stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.Node.Close()
	r.Host.Close()
	r.cancel = nil
}

// Cluster is a set of relays that know each other through the first one.
type Cluster struct {
	Relays []*Member
	opts   Options
}

// joinsAtOnce is how many relays of a cluster join at the same time.
const joinsAtOnce = 4

// NewCluster starts n relays, each bootstrapped from relay 0, and waits
// until every relay has published its descriptor once (with Gossip: until
// the next relay's view holds it). Everything is
// stopped at the end of the test.
func NewCluster(tb testing.TB, n int, opts Options) *Cluster {
	tb.Helper()
	opts.defaults()
	net := &Cluster{opts: opts}
	tb.Cleanup(net.Close)
	began := time.Now()
	// Relay 0 first, then the others, a few joining at a time.
	start := func(i int, boot []peer.AddrInfo) (*Member, error) {
		r, err := startRelay(i, boot, opts)
		for try := 1; err != nil && try < 3; try++ { // a loaded machine may miss a join
			tb.Logf("relay %d: %v; starting it again", i, err)
			r, err = startRelay(i, boot, opts)
		}
		return r, err
	}
	net.Relays = make([]*Member, n)
	errs := make([]error, n)
	if n > 0 {
		net.Relays[0], errs[0] = start(0, nil)
	}
	if n > 0 && errs[0] == nil {
		boot := []peer.AddrInfo{AddrInfo(net.Relays[0].Host)}
		var wg sync.WaitGroup
		sem := make(chan struct{}, joinsAtOnce)
		for i := 1; i < n; i++ {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				net.Relays[i], errs[i] = start(i, boot)
			})
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("relay %d: %v", i, err)
		}
	}
	// A relay that published when the network had a few nodes stored its
	// record at those, which need not be the nearest once all have
	// joined: it is asked to publish again, into the whole network, each
	// time a wait runs out. The check is a lookup from a client that
	// holds no record itself, as the tests' clients do; a relay could
	// answer from its own store a record the network cannot serve.
	var checker *dht.Node
	if !opts.Gossip && n > 0 {
		checker = NewClient(tb, net.Bootstrap())
	}
	started := time.Now()
	found := func(i int) error {
		r, next := net.Relays[i], net.Relays[(i+1)%n]
		var err error
		for try := 0; try < 4; try++ {
			if try > 0 {
				tb.Logf("relay %d not found after %v: %v; publishing again", i, time.Since(started).Round(time.Millisecond), err)
				r.Publisher.Changed()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if opts.Gossip { // seen by gossip, no lookup needed
				err = waitInView(ctx, next.View, r.ID())
			} else {
				err = WaitPublished(ctx, checker, r.ID())
			}
			cancel()
			if err == nil {
				return nil
			}
		}
		return err
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, joinsAtOnce)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = found(i)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("relay %d never published: %v", i, err)
		}
	}
	tb.Logf("%d relays started in %v, found in %v more", n, started.Sub(began).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	return net
}

// Bootstrap returns the address of relay 0 for new nodes to join through.
func (net *Cluster) Bootstrap() []peer.AddrInfo {
	return []peer.AddrInfo{AddrInfo(net.Relays[0].Host)}
}

// Close stops every relay.
func (net *Cluster) Close() {
	for _, r := range net.Relays {
		if r != nil { // one that failed to start
			r.Stop()
		}
	}
}

// AddrInfo is h's peer ID and listen addresses.
func AddrInfo(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

func startRelay(i int, boot []peer.AddrInfo, opts Options) (*Member, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, err := dht.NewHost(dht.HostConfig{Identity: key})
	if err != nil {
		return nil, err
	}
	cfg := dht.Config{Mode: dht.ModeServer, Bootstrap: boot, Now: opts.Now}
	if opts.OnQuery != nil {
		cfg.OnQuery = func(key string) { opts.OnQuery(i, key) }
	}
	node, err := dht.Open(h, cfg)
	if err != nil {
		h.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Member{Key: key, Host: h, Node: node, cancel: cancel, done: make(chan struct{})}
	if len(boot) > 0 {
		bctx, bcancel := context.WithTimeout(ctx, 20*time.Second)
		err = node.Bootstrap(bctx)
		bcancel()
		if err != nil {
			cancel()
			node.Close()
			h.Close()
			return nil, err
		}
	}
	r.Publisher = dht.NewPublisher(node, Signer(key, h, opts.Roles(i), opts.Lifetime), opts.Interval)
	if !opts.Gossip {
		go func() { defer close(r.done); r.Publisher.Run(ctx) }()
		return r, nil
	}
	r.View = view.NewSet(opts.Now)
	r.Gossip = view.NewGossip(h, r.View, view.GossipConfig{Bootstrap: boot, AllowSameSubnet: true, Now: opts.Now})
	r.Publisher.AlsoPublish(r.Gossip.Publish)
	go func() {
		defer close(r.done)
		var wg sync.WaitGroup
		wg.Go(func() { r.Gossip.Run(ctx) })
		r.Publisher.Run(ctx)
		wg.Wait()
	}()
	return r, nil
}

// Signer returns a SignFunc that describes h as a relay with the given
// roles, a fresh onion key and descriptors living for lifetime.
func Signer(key crypto.PrivKey, h host.Host, roles descriptor.Role, lifetime time.Duration) dht.SignFunc {
	var onion [32]byte
	rand.Read(onion[:])
	var notAfter int64 // fixed by the first signature, as a real onion key's
	return func(seq uint64, now time.Time) ([]byte, error) {
		if notAfter == 0 {
			notAfter = now.Add(7 * 24 * time.Hour).Unix()
		}
		r := Describe(h, roles)
		r.Seq = seq
		r.Published = now.Unix()
		r.Expires = now.Add(lifetime).Unix()
		r.OnionKeys = []descriptor.OnionKey{{Key: onion, NotAfter: notAfter}}
		return descriptor.Sign(key, r)
	}
}

// Describe is a minimal valid descriptor body for h (times, sequence and
// onion key still to be filled in).
func Describe(h host.Host, roles descriptor.Role) *descriptor.Relay {
	r := &descriptor.Relay{
		Version: descriptor.Version, PeerID: h.ID(), Roles: roles,
		Bandwidth: 1 << 20, Software: "obol-test",
		// The circuit protocol (circuit.ProtocolVersion; dht may not
		// import circuit).
		Protocols: []uint16{2},
	}
	for _, a := range h.Addrs() {
		r.Addrs = append(r.Addrs, a.Bytes())
	}
	if len(r.Addrs) > descriptor.MaxAddrs {
		r.Addrs = r.Addrs[:descriptor.MaxAddrs]
	}
	if roles.Has(descriptor.RoleExit) {
		r.ExitPorts = []descriptor.PortRange{{Lo: 1, Hi: 65535}}
	}
	return r
}

// WaitPublished waits until node can look up id's descriptor.
func WaitPublished(ctx context.Context, node *dht.Node, id peer.ID) error {
	return dht.WaitPublished(ctx, node, id)
}

// waitInView waits until id's descriptor is in v.
func waitInView(ctx context.Context, v *view.Set, id peer.ID) error {
	for {
		if _, ok := v.Get(id); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// NewClient starts a client-mode DHT node joined through boot.
func NewClient(tb testing.TB, boot []peer.AddrInfo) *dht.Node {
	tb.Helper()
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: key})
	if err != nil {
		tb.Fatal(err)
	}
	node, err := dht.Open(h, dht.Config{Mode: dht.ModeClient, Bootstrap: boot})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { node.Close(); h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := node.Bootstrap(ctx); err != nil {
		tb.Fatal(err)
	}
	return node
}
