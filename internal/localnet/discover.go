package localnet

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/node"
)

// NewClient opens a client of the network that has taken its first view
// (it knows at least one relay); dataDir may be "" for an in-memory
// cache. The caller closes it.
func (n *Network) NewClient(ctx context.Context, dataDir string) (*node.Client, error) {
	c, err := node.OpenClient(node.ClientConfig{DataDir: dataDir, Bootstrap: n.Bootstrap(), Logger: n.cfg.Logger.With("client", 0)})
	if err != nil {
		return nil, err
	}
	if _, err := c.Sample(ctx, 1); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Discovery is what a client learned by sampling.
type Discovery struct {
	Found    []*descriptor.Relay // every relay the client knows, verified
	Missing  []peer.ID           // relays of the network it did not find
	Attempts int                 // samples taken
}

// Discover samples the network with c until every relay has been found or
// ctx ends, and reports what was found. Sampled relays accumulate in the
// client's cache, so each round only has to add the ones still missing.
func (n *Network) Discover(ctx context.Context, c *node.Client) Discovery {
	var d Discovery
	for {
		d.Attempts++
		_, _ = c.Sample(ctx, len(n.Relays)) // a short sample is retried below
		d.Found, d.Missing = n.compare(c.Known())
		if len(d.Missing) == 0 || ctx.Err() != nil {
			return d
		}
		select {
		case <-ctx.Done():
			return d
		case <-time.After(10 * pollEvery):
		}
	}
}

// compare splits known into relays of this network and lists the
// network's relays that are not known.
func (n *Network) compare(known []*descriptor.Relay) (found []*descriptor.Relay, missing []peer.ID) {
	have := make(map[peer.ID]*descriptor.Relay, len(known))
	for _, r := range known {
		have[r.PeerID] = r
	}
	for _, id := range n.IDs() {
		if r, ok := have[id]; ok {
			found = append(found, r)
		} else {
			missing = append(missing, id)
		}
	}
	return found, missing
}
