package client_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/circuittest"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/relaynet"
	"github.com/obolnet/obol/router"
)

// exitNet is a small network of real relays, every one a guard and an
// exit, whose exits resolve every name to loopback through a DNS server
// that records the names it is asked: what an exit's resolver, and so
// public DNS, would see.
type exitNet struct {
	*relaynet.Network
	t     testing.TB
	dns   *circuittest.DNS
	links *link.Manager
	echo  string // port of a loopback echo server

	mu      sync.Mutex      // guards the fields below
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
	return n.Dir.AddrInfo(ctx, id)
}

// setFault makes relay i fail a fraction of the circuits it extends.
func (n *exitNet) setFault(i int, fraction float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults[i] = fraction
}

func newExitNet(t testing.TB, relays int) *exitNet {
	n := &exitNet{t: t, dns: circuittest.StartTestDNS(t, nil), echo: echoServer(t), faults: map[int]float64{}, extends: map[int]int{}}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.mu.Lock()
		n.dials++
		n.mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	n.Network = relaynet.Start(t, relays, relaynet.Options{
		Exit:           []router.PolicyOption{router.WithResolver(n.dns.Resolver())},
		Router:         func(_ *relaynet.Relay, c *router.Config) { c.Dial = dial },
		RelayDirectory: func(i int) router.Directory { return relayDir{n: n, i: i} },
	})
	n.links = n.Links
	return n
}

// manager starts a client manager on the network, with cfg's other
// fields as given.
func (n *exitNet) manager(cfg client.Config) *client.CircuitManager {
	cfg.Links, cfg.Directory, cfg.AllowSameSubnet = n.links, n.Dir, true
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

// onlyGuards leaves the guard role to the relays idx only.
func (n *exitNet) onlyGuards(idx ...int) {
	n.Dir.Edit(func(descs []*descriptor.Relay) {
		for i, d := range descs {
			d.Roles &^= descriptor.RoleGuard
			if slices.Contains(idx, i) {
				d.Roles |= descriptor.RoleGuard
			}
		}
	})
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
