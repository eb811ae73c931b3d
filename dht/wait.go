package dht

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// WaitPublished waits until node can look up id's descriptor, or ctx
// ends; each lookup is bounded to 5 s.
func WaitPublished(ctx context.Context, node *Node, id peer.ID) error {
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, _, err := node.LookupRelay(lctx, id)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}
