package dht

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// Lookups of one kind each, for tests that compare them.

// LookupRelayPlain is kad-dht's own lookup of a relay descriptor.
func (n *Node) LookupRelayPlain(ctx context.Context, id peer.ID) (*descriptor.Relay, []byte, error) {
	return n.lookupOnce(ctx, id)
}

// LookupRelayDisjoint is the disjoint lookup alone, without kad-dht's.
func (n *Node) LookupRelayDisjoint(ctx context.Context, id peer.ID) (*descriptor.Relay, []byte, error) {
	key := RelayKey(id)
	rec, err := n.getRecord(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	r, err := n.val.verify(key, rec)
	return r, rec, err
}

// GetHSPlain is kad-dht's own lookup of a hidden-service descriptor.
func (n *Node) GetHSPlain(ctx context.Context, index [32]byte) (*descriptor.HSRecord, []byte, error) {
	return n.getHSPlain(ctx, HSKey(index))
}

// GetHSDisjoint is the disjoint lookup alone, without kad-dht's.
func (n *Node) GetHSDisjoint(ctx context.Context, index [32]byte) (*descriptor.HSRecord, []byte, error) {
	key := HSKey(index)
	rec, err := n.getRecord(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	r, err := hsValidator{now: n.cfg.Now}.verify(key, rec)
	return r, rec, err
}
