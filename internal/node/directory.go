package node

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/dht"
)

// dhtDirectory tells the router where a next hop is: from the relay's
// descriptor cache, or else by looking its descriptor up in the DHT. A
// relay looks up only relays that circuits name; clients never supply
// addresses.
type dhtDirectory struct {
	node  *dht.Node
	cache *dht.Cache
}

func (d dhtDirectory) AddrInfo(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	r, ok := d.cache.Get(id)
	if !ok {
		var rec []byte
		var err error
		if r, rec, err = d.node.LookupRelay(ctx, id); err != nil {
			return peer.AddrInfo{}, fmt.Errorf("next hop: %w", err)
		}
		d.cache.Put(rec)
	}
	ai := peer.AddrInfo{ID: id}
	for _, b := range r.Addrs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai, nil
}
