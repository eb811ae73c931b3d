package hidden

import (
	"context"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/padding"
)

// The hidden-service setup machine (specs/12-padding.md): once the last
// hop of a client's introduction or rendezvous circuit has answered,
// the client starts padding.HSSetup with the middle hop, so that to the
// guard the circuit's setup looks like an exit circuit's up to its first
// request and response.

// setupHop is the hop the machine runs with: the middle of a
// three-hop path (guard, vanguard, last).
const setupHop = 1

// setupPaddingTimeout bounds the machine's negotiation and run.
const setupPaddingTimeout = 2 * time.Second

// padSetup runs the setup machine on c and returns once the middle hop
// has sent its cells, the circuit closed or the bound passed.
func (n *Config) padSetup(c *client.Circuit) {
	if n.NoSetupPadding || len(c.Hops()) <= setupHop+1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupPaddingTimeout)
	defer cancel()
	if err := c.Pad(ctx, setupHop, 0, padding.HSSetup); err != nil {
		return
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, got := c.PaddingCounts(); got >= uint64(padding.HSSetup.Relay.Cells) {
			return
		}
		select {
		case <-tick.C:
		case <-c.Done():
			return
		case <-ctx.Done():
			return
		}
	}
}

// padThenClose runs the setup machine on an introduction or
// descriptor-fetch circuit, whose work is done, and closes it.
func (n *Config) padThenClose(c *client.Circuit) {
	n.padSetup(c)
	c.Close()
}
