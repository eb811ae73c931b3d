package view

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// Topic is the GossipSub topic on which relays spread descriptors. A
// message is one signed relay descriptor, nothing else: no pubsub
// signature (the descriptor is signed), no author, and its message ID is
// the SHA-256 of the record, so a record is forwarded once whoever
// publishes it.
const Topic = "/obol/relays/1"

// Defaults of a Gossip.
const (
	DefaultSyncEvery  = 10 * time.Minute // anti-entropy rounds against other relays' views
	DefaultPruneEvery = time.Minute      // expired descriptors dropped
)

// GossipConfig configures a relay's view service. Zero values pick the
// defaults.
type GossipConfig struct {
	// Bootstrap are peers to take the view from at start, beside the
	// relays the view knows.
	Bootstrap []peer.AddrInfo
	// SyncEvery is how often the view is compared with other relays'
	// (default DefaultSyncEvery); gossip carries the rest.
	SyncEvery time.Duration
	// AllowSameSubnet lets sync sources share a network; local test
	// networks only.
	AllowSameSubnet bool
	Now             func() time.Time // default time.Now
	Logger          *slog.Logger     // default: discard
}

// Gossip is a relay's part in spreading descriptors: it validates and
// forwards descriptors on Topic into its Set, publishes the relay's own,
// serves the Set over Protocol and syncs it with other relays' views.
type Gossip struct {
	h    host.Host
	set  *Set
	cfg  GossipConfig
	sync *Syncer

	ready chan struct{} // closed once the topic is joined
	topic *pubsub.Topic // set before ready is closed

	accepted, rejected, ignored atomic.Uint64
}

// NewGossip returns the view service of relay host h over set. It starts
// nothing; call Run.
func NewGossip(h host.Host, set *Set, cfg GossipConfig) *Gossip {
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = DefaultSyncEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sy := NewSyncer(h, set, SyncConfig{AllowSameSubnet: cfg.AllowSameSubnet, Now: cfg.Now, Logger: cfg.Logger})
	return &Gossip{h: h, set: set, cfg: cfg, sync: sy, ready: make(chan struct{})}
}

// Set is the relay's view.
func (g *Gossip) Set() *Set { return g.set }

// Counts are the messages the validator accepted, rejected as invalid
// (their sender is penalised) and ignored (stale or duplicate).
func (g *Gossip) Counts() (accepted, rejected, ignored uint64) {
	return g.accepted.Load(), g.rejected.Load(), g.ignored.Load()
}

// Run joins the topic, serves the view and keeps it until ctx ends. It
// returns nil when ctx is cancelled.
func (g *Gossip) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ps, err := pubsub.NewGossipSub(ctx, g.h, gossipOptions()...)
	if err != nil {
		return fmt.Errorf("view: gossipsub: %w", err)
	}
	if err := ps.RegisterTopicValidator(Topic, pubsub.ValidatorEx(g.validate)); err != nil {
		return fmt.Errorf("view: validator: %w", err)
	}
	topic, err := ps.Join(Topic)
	if err != nil {
		return fmt.Errorf("view: join %s: %w", Topic, err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		topic.Close()
		return fmt.Errorf("view: subscribe %s: %w", Topic, err)
	}
	stop := Serve(g.h, g.set)
	defer stop()
	g.topic = topic
	close(g.ready)
	var wg sync.WaitGroup
	wg.Go(func() { drain(ctx, sub) })
	wg.Go(func() { g.prune(ctx) })
	wg.Go(func() { g.sync.Run(ctx, g.cfg.SyncEvery, g.candidates) })
	<-ctx.Done()
	sub.Cancel()
	wg.Wait()
	topic.Close()
	return nil
}

// candidates are the bootstrap peers, the relays of the view and the
// connected peers that serve a view (relays that joined through this
// one): a relay without bootstrap peers that restarted with an empty
// view would otherwise have no one to take a view from until gossip
// reached it. Every record is verified whoever serves it.
func (g *Gossip) candidates() []peer.AddrInfo {
	out := Candidates(g.cfg.Bootstrap, g.set.Relays())
	ps := g.h.Peerstore()
	for _, p := range g.h.Network().Peers() {
		if ok, _ := ps.SupportsProtocols(p, Protocol); len(ok) > 0 {
			out = append(out, peer.AddrInfo{ID: p, Addrs: ps.Addrs(p)})
		}
	}
	return out
}

// Publish spreads the relay's own signed descriptor, once the topic is
// joined (it waits for Run to get there, or for ctx).
func (g *Gossip) Publish(ctx context.Context, rec []byte) error {
	select {
	case <-g.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Wait for a peer on the topic: a record published to nobody is lost
	// until the next republish.
	if err := g.topic.Publish(ctx, rec, pubsub.WithReadiness(pubsub.MinTopicSize(1))); err != nil {
		return fmt.Errorf("view: publish: %w", err)
	}
	return nil
}

// validate is the topic validator: a message is kept and forwarded only
// if it is a valid descriptor newer than the one held for its relay.
// Messages that are not valid descriptors are rejected, which counts
// against the peer that sent them; stale ones are ignored.
func (g *Gossip) validate(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	_, out, err := g.set.Offer(m.GetData())
	switch {
	case errors.Is(err, descriptor.ErrExpired), errors.Is(err, descriptor.ErrNotYetValid), errors.Is(err, ErrFull):
		g.ignored.Add(1) // may be clock skew or a full view, not malice
		return pubsub.ValidationIgnore
	case err != nil:
		g.rejected.Add(1)
		g.cfg.Logger.Debug("invalid descriptor on the relay topic", "peer", from, "err", err)
		return pubsub.ValidationReject
	case out == Stale:
		g.ignored.Add(1)
		return pubsub.ValidationIgnore
	}
	g.accepted.Add(1)
	return pubsub.ValidationAccept
}

// drain reads the subscription: its messages are in the set already
// (the validator keeps them), but a subscription must be read.
func drain(ctx context.Context, sub *pubsub.Subscription) {
	for {
		if _, err := sub.Next(ctx); err != nil {
			return
		}
	}
}

func (g *Gossip) prune(ctx context.Context) {
	t := time.NewTicker(DefaultPruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.set.Prune()
		}
	}
}

// gossipOptions are GossipSub's settings for the relay topic: records
// carry their own signatures, message IDs are content hashes, and a peer
// that forwards invalid records loses score until it is graylisted (a
// few invalid messages suffice; the penalty halves in about a minute).
func gossipOptions() []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(func(m *pb.Message) string {
			h := sha256.Sum256(m.GetData())
			return string(h[:])
		}),
		pubsub.WithPeerScore(scoreParams(), scoreThresholds()),
	}
}

func scoreParams() *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		SkipAtomicValidation: true,
		Topics: map[string]*pubsub.TopicScoreParams{Topic: {
			SkipAtomicValidation:           true,
			TopicWeight:                    1,
			TimeInMeshQuantum:              time.Second, // unweighted, but score() divides by it
			InvalidMessageDeliveriesWeight: -10,
			InvalidMessageDeliveriesDecay:  0.99,
		}},
		DecayInterval: time.Second,
		DecayToZero:   0.01,
	}
}

func scoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:   -10,
		PublishThreshold:  -50,
		GraylistThreshold: -80,
		AcceptPXThreshold: 100,
	}
}
