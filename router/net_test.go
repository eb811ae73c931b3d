package router_test

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/internal/relaynet"
	"github.com/obolnet/obol/router"
)

// testNet is a network of relays, every one an exit that may reach
// loopback, and a client link manager.
type testNet struct {
	*relaynet.Network
	client *link.Manager
}

// newTestNet starts n relays; cfg, if set, adjusts relay i's
// configuration.
func newTestNet(t testing.TB, n int, cfg func(i int, c *router.Config)) *testNet {
	var o relaynet.Options
	if cfg != nil {
		o.Router = func(r *relaynet.Relay, c *router.Config) { cfg(r.Index, c) }
	}
	nw := relaynet.Start(t, n, o)
	return &testNet{Network: nw, client: nw.Links}
}

func newHost(t testing.TB) host.Host { return relaynet.TestHost(t) }

func (tn *testNet) build(t testing.TB, idx ...int) *client.Circuit {
	c, err := tn.Build(context.Background(), idx...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
