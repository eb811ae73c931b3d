package localnet

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/obolnet/obol/dht"
)

// EventKind says what happened to a relay while the network boots.
type EventKind int

// Event kinds, in the order each relay goes through them.
const (
	Started   EventKind = iota // host listening, keys created
	Joined                     // routing table not empty
	Published                  // descriptor found by another relay's lookup
)

// Event reports progress of one relay.
type Event struct {
	Kind  EventKind
	Relay int // index
	Of    int // number of relays
	ID    peer.ID
}

func (e Event) String() string {
	verb := [...]string{Started: "started", Joined: "joined the DHT", Published: "published its descriptor"}[e.Kind]
	return fmt.Sprintf("relay %d/%d %s (%s)", e.Relay+1, e.Of, verb, e.ID)
}

// pollEvery is how often waiting loops look again.
const pollEvery = 20 * time.Millisecond

// waitUp waits, for all relays at once, until each has joined and its
// descriptor can be looked up from the next relay.
func (n *Network) waitUp(ctx context.Context) error {
	errs := make([]error, len(n.Relays))
	var wg sync.WaitGroup
	for i := range n.Relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.waitRelay(ctx, i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("localnet: relay %d: %w", i, err)
		}
	}
	if err := n.waitViews(ctx); err != nil {
		return err
	}
	return n.waitMints(ctx)
}

// waitMints waits until every paid relay accepts channels: one that
// reaches its mint through circuits fetches the mint's keyset once its
// view holds a path to it.
func (n *Network) waitMints(ctx context.Context) error {
	for i, r := range n.Relays {
		select {
		case <-r.MintReady():
		case <-ctx.Done():
			return fmt.Errorf("localnet: relay %d never reached its mint: %w", i, ctx.Err())
		}
	}
	return nil
}

// waitViews waits until every relay's view holds every relay: clients
// take their view from relays' views, and a client that joined a relay
// whose view gossip had not yet filled would start with part of the
// network (and choose its guards from that part).
func (n *Network) waitViews(ctx context.Context) error {
	for i, r := range n.Relays {
		for r.View().Len() < len(n.Relays) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("localnet: relay %d's view holds %d of %d relays: %w", i, r.View().Len(), len(n.Relays), ctx.Err())
			case <-time.After(pollEvery):
			}
		}
	}
	return nil
}

func (n *Network) waitRelay(ctx context.Context, i int) error {
	r := n.Relays[i]
	if err := r.Node().WaitReady(ctx); err != nil {
		return err
	}
	n.cfg.Progress(Event{Kind: Joined, Relay: i, Of: len(n.Relays), ID: r.ID()})
	other := n.Relays[(i+1)%len(n.Relays)].Node()
	if err := dht.WaitPublished(ctx, other, r.ID()); err != nil {
		return fmt.Errorf("descriptor never found: %w", err)
	}
	n.cfg.Progress(Event{Kind: Published, Relay: i, Of: len(n.Relays), ID: r.ID()})
	return nil
}
