package localnet

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

// Hop turns a verified descriptor into a path hop: its addresses and its
// current onion key.
func Hop(d *descriptor.Relay) (client.Hop, error) {
	k, ok := d.OnionKeyAt(time.Now())
	if !ok {
		return client.Hop{}, fmt.Errorf("localnet: relay %s has no current onion key", d.PeerID)
	}
	ai := peer.AddrInfo{ID: d.PeerID}
	for _, b := range d.Addrs {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return client.Hop{}, fmt.Errorf("localnet: relay %s: %w", d.PeerID, err)
		}
		ai.Addrs = append(ai.Addrs, a)
	}
	return client.Hop{Peer: ai, OnionKey: k.Key}, nil
}
