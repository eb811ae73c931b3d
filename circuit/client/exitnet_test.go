package client_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
	"github.com/obolnet/obol/router"
)

// exitNet is a small network of real relays, every one a guard and an
// exit, whose exits resolve every name to loopback through a DNS server
// that records the names it is asked: what an exit's resolver, and so
// public DNS, would see.
type exitNet struct {
	t      testing.TB
	relays []*exitRelay
	dns    *recordingDNS
	links  *link.Manager
	echo   string // port of a loopback echo server

	mu      sync.Mutex // guards the fields below
	addrs   map[peer.ID]peer.AddrInfo
	descs   []*descriptor.Relay
	dials   int             // TCP connections the exits opened
	faults  map[int]float64 // relay → fraction of its extends it fails
	extends map[int]int     // relay → extends asked
}

// relayDir is relay i's view of the network: it fails the fraction of
// extends that faults says, evenly spread.
type relayDir struct {
	n *exitNet
	i int
}

func (d relayDir) AddrInfo(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	n := d.n
	n.mu.Lock()
	k := n.extends[d.i]
	n.extends[d.i]++
	f := n.faults[d.i]
	fail := int(float64(k+1)*f) > int(float64(k)*f) // evenly spread
	n.mu.Unlock()
	if fail {
		return peer.AddrInfo{}, fmt.Errorf("relay %d refuses to extend", d.i)
	}
	return n.AddrInfo(ctx, id)
}

// setFault makes relay i fail a fraction of the circuits it extends.
func (n *exitNet) setFault(i int, fraction float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults[i] = fraction
}

type exitRelay struct {
	host   host.Host
	onion  circuit.OnionKey
	router *router.Router
}

func (n *exitNet) AddrInfo(_ context.Context, id peer.ID) (peer.AddrInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ai, ok := n.addrs[id]
	if !ok {
		return ai, fmt.Errorf("unknown relay %s", id)
	}
	return ai, nil
}

// Relays is the client's directory.
func (n *exitNet) Relays() []*descriptor.Relay {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*descriptor.Relay(nil), n.descs...)
}

func newTestHost(t testing.TB) host.Host {
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: k})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newExitNet(t testing.TB, relays int) *exitNet {
	n := &exitNet{t: t, dns: startRecordingDNS(t), addrs: map[peer.ID]peer.AddrInfo{}, echo: echoServer(t),
		faults: map[int]float64{}, extends: map[int]int{}}
	for range relays {
		n.addRelay()
	}
	h := newTestHost(t)
	n.links = link.NewManager(h, link.Config{})
	n.links.Start()
	t.Cleanup(func() { n.links.Close() })
	return n
}

func (n *exitNet) addRelay() {
	t := n.t
	h := newTestHost(t)
	onion, err := circuit.GenerateOnionKey(rand.Reader, 1)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := router.ParseExitPolicy([]string{"accept *:*"}, router.AllowLoopback(), router.WithResolver(n.dns.resolver()))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.mu.Lock()
		n.dials++
		n.mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	dir := relayDir{n: n, i: len(n.relays)}
	rt, err := router.New(h, router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: dir, Exit: pol, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rt.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitServing(t, h)
	d := dhttest.Describe(h, descriptor.RoleRelay|descriptor.RoleGuard|descriptor.RoleExit)
	d.OnionKeys = []descriptor.OnionKey{{Key: onion.Public, NotAfter: time.Now().Add(24 * time.Hour).Unix()}}
	n.mu.Lock()
	n.addrs[h.ID()] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
	n.descs = append(n.descs, d)
	n.mu.Unlock()
	n.relays = append(n.relays, &exitRelay{host: h, onion: onion, router: rt})
}

func waitServing(t testing.TB, h host.Host) {
	for range 2000 {
		for _, p := range h.Mux().Protocols() {
			if p == link.Protocol {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("router never started serving")
}

// manager starts a client manager on the network, with cfg's other
// fields as given.
func (n *exitNet) manager(cfg client.Config) *client.CircuitManager {
	cfg.Links, cfg.Directory, cfg.AllowSameSubnet = n.links, n, true
	if cfg.Prebuilt == 0 {
		cfg.Prebuilt = -1
	}
	m, err := client.NewCircuitManager(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	n.t.Cleanup(func() { cancel(); <-done })
	return m
}

// path is a path through the relays idx.
func (n *exitNet) path(idx ...int) []client.Hop {
	var p []client.Hop
	for _, i := range idx {
		r := n.relays[i]
		p = append(p, client.Hop{Peer: peer.AddrInfo{ID: r.host.ID(), Addrs: r.host.Addrs()}, OnionKey: r.onion.Public})
	}
	return p
}

// onlyGuards leaves the guard role to the relays idx only.
func (n *exitNet) onlyGuards(idx ...int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, d := range n.descs {
		d.Roles &^= descriptor.RoleGuard
		if slices.Contains(idx, i) {
			d.Roles |= descriptor.RoleGuard
		}
	}
}

func (n *exitNet) exitDials() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials
}

// echoServer echoes on loopback and returns its port.
func echoServer(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(c, c); c.Close() }()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// recordingDNS answers every A query with 127.0.0.1 and records the
// names asked.
type recordingDNS struct {
	conn net.PacketConn

	mu    sync.Mutex
	names []string
}

func startRecordingDNS(t testing.TB) *recordingDNS {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &recordingDNS{conn: pc}
	done := make(chan struct{})
	go func() { defer close(done); d.serve() }()
	t.Cleanup(func() { pc.Close(); <-done })
	return d
}

func (d *recordingDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dd net.Dialer
		return dd.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// asked returns the names asked so far.
func (d *recordingDNS) asked() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.names...)
}

func (d *recordingDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, err := d.answer(buf[:n]); err == nil {
			d.conn.WriteTo(resp, from)
		}
	}
}

func (d *recordingDNS) answer(req []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.names = append(d.names, strings.ToLower(q.Name.String()))
	d.mu.Unlock()
	h.Response, h.Authoritative = true, true
	b := dnsmessage.NewBuilder(nil, h)
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if q.Type == dnsmessage.TypeA {
		b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
			dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
	}
	return b.Finish()
}
