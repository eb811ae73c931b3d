package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/relaynet"
	"github.com/obolnet/obol/router"
)

// Link is the emulated link in front of every node: one-way delay, loss
// and a bandwidth limit per direction. The zero Link is plain loopback.
type Link = relaynet.Link

// relay is one in-process relay: a libp2p host and its router.
type relay = relaynet.Relay

// testnet is a set of relays (every one an exit allowed to reach
// loopback, an introduction and a rendezvous point) and a client's link
// manager, each relay optionally behind a delaying forwarder. Close
// releases everything.
type testnet struct {
	*relaynet.Network
	client *link.Manager
}

// newHost starts a libp2p host on loopback with a fresh identity.
func newHost() (host.Host, error) { return relaynet.NewHost() }

// startNetwork starts n relays; meter, if not nil, gives relay i its meter.
func startNetwork(n int, l Link, meter func(i int) router.Meter) (*testnet, error) {
	nw, err := relaynet.Open(n, relaynet.Options{
		Link: l,
		Roles: func(int) descriptor.Role {
			return descriptor.RoleGuard | descriptor.RoleExit | descriptor.RoleIntro | descriptor.RoleRendezvous
		},
		Router: func(r *relaynet.Relay, c *router.Config) {
			// No per-peer limit on new circuits: every scenario's
			// circuits come from one client.
			c.CreateRate = -1
			if meter != nil {
				c.Meter = meter(r.Index)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return &testnet{Network: nw, client: nw.Links}, nil
}

// warm builds and closes a circuit along path so the links are open.
func (nw *testnet) warm(ctx context.Context, path []client.Hop) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Build(ctx, nw.client, path)
	if err != nil {
		return fmt.Errorf("bench: warm-up build: %w", err)
	}
	return c.Close()
}
