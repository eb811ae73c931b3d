package obol_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/internal/localnet"
	"github.com/obolnet/obol/internal/node"
)

// Every relay notes each peer other than a relay that it ever has a
// connection with, as an attacker running relays would. A client's
// address reaches only its guards and the (at most view.DefaultSources)
// relays it takes its view from: a client joins no DHT (specs/02, "Who
// joins the DHT"). One that did was seen by every relay of the network.
func TestOnlySourcesAndGuardsSeeAClient(t *testing.T) {
	relays, err := localnet.Start(context.Background(), localnet.Config{Relays: 9})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relays.Close)
	saw := watchPeers(relays)

	c := runClient(t, relays)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := c.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	echo(t, conn)

	guards := c.Circuits().Guards()
	var others []string
	seen := 0
	for i, r := range relays.Relays {
		peers, relay := saw(i), r.ID()
		if len(peers) == 0 {
			continue
		}
		seen++
		if len(peers) != 1 {
			t.Errorf("relay %s met %d peers that are not relays, want the client alone", relay, len(peers))
		}
		if !slices.Contains(guards, relay) {
			others = append(others, relay.String())
		}
	}
	if seen == 0 {
		t.Fatal("no relay saw the client: the check below proves nothing")
	}
	if len(others) > view.DefaultSources {
		t.Errorf("%d of %d relays saw the client; %d of them are not its guards, more than its %d view sources: %v",
			seen, len(relays.Relays), len(others), view.DefaultSources, others)
	}
	t.Logf("%d of %d relays saw the client: %d guards of %d, %d other (view sources)", seen, len(relays.Relays), seen-len(others), len(guards), len(others))
}

// watchPeers notes, for every relay of relays, each peer other than a
// relay that it ever has a connection with.
func watchPeers(relays *localnet.Network) (saw func(relay int) []peer.ID) {
	isRelay := map[peer.ID]bool{}
	for _, id := range relays.IDs() {
		isRelay[id] = true
	}
	var mu sync.Mutex
	met := make([][]peer.ID, len(relays.Relays))
	for i, r := range relays.Relays {
		r.Node().Host().Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, conn network.Conn) {
			if p := conn.RemotePeer(); !isRelay[p] {
				mu.Lock()
				if !slices.Contains(met[i], p) {
					met[i] = append(met[i], p)
				}
				mu.Unlock()
			}
		}})
	}
	return func(i int) []peer.ID {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(met[i])
	}
}

// A client that starts again takes its first view from the guards it
// saved, which its cache still holds: the bootstrap relay, which every
// new client meets, does not see it again. (The bootstrap relay here
// cannot be a guard.)
func TestRestartedClientSkipsTheBootstrapRelay(t *testing.T) {
	relays, err := localnet.Start(context.Background(), localnet.Config{Relays: 6,
		Configure: func(i int, c *node.RelayConfig) {
			if i == 0 {
				c.Roles &^= descriptor.RoleGuard
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relays.Close)
	saw := watchPeers(relays)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln)
	dir := t.TempDir()
	run := func() {
		c, err := obol.NewClient(obol.ClientConfig{Bootstrap: relays.Bootstrap(), DataDir: dir, AllowSameSubnet: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()
		conn, err := c.Dial(ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		echo(t, conn)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	run()
	if n := len(saw(0)); n != 1 {
		t.Fatalf("the bootstrap relay met %d clients on the first start, want 1: the check below proves nothing", n)
	}
	run()
	if n := len(saw(0)); n != 1 {
		t.Errorf("the bootstrap relay met the client again when it started again (%d clients in all)", n)
	}
}
