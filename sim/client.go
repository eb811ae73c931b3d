package sim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/internal/node"
)

// simClient is one simulated client running obol's own client code: a
// descriptor cache that it fills as `obol proxy` does (the union of three
// relays' views, or DHT samples: Config.Discovery), and a circuit manager
// that chooses paths from that cache (guards, weights and path rules as
// they are) and builds circuits. Like `obol proxy` it joins no DHT when it
// takes views; with samples it runs a DHT client node, as the earlier
// design did.
type simClient struct {
	idx   int
	ep    *endpoint
	host  host.Host
	node  *dht.Node // nil when it takes views
	cache *dht.Cache
	views *view.Syncer
	boot  []peer.AddrInfo
	links *link.Manager
	mgr   *client.CircuitManager

	joined time.Time // when it started to join

	seenMu sync.Mutex
	seen   map[peer.ID]bool // every peer it ever had a connection with

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// startClient builds a client and starts its circuit manager; it takes
// no view and joins no DHT yet (join does).
func (n *Network) startClient(idx int, ep *endpoint, boot []peer.AddrInfo) (*simClient, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, err := newHost(n.simnet, ep, key, n.link(n.cfg.ClientBandwidth), clientConnLow, clientConnHigh)
	if err != nil {
		return nil, err
	}
	var node *dht.Node
	if n.cfg.Discovery != DiscoveryView {
		if node, err = dht.Open(h, dht.Config{Mode: dht.ModeClient, Bootstrap: boot}); err != nil {
			h.Close()
			return nil, fmt.Errorf("sim: client %d: %w", idx, err)
		}
	}
	c := &simClient{idx: idx, ep: ep, host: h, node: node, cache: dht.NewCache("", nil), boot: boot, done: make(chan struct{}),
		seen: map[peer.ID]bool{}}
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, conn network.Conn) {
		c.seenMu.Lock()
		c.seen[conn.RemotePeer()] = true
		c.seenMu.Unlock()
	}})
	// As obol proxy, a client takes its view from its guards once it has
	// them (node.Client.PreferSources).
	c.views = view.NewSyncer(h, c.cache, view.SyncConfig{Preferred: c.guards, CloseDropped: true})
	c.links = link.NewManager(h, link.Config{})
	c.links.Start()
	c.mgr, err = client.NewCircuitManager(client.Config{
		Links:     c.links,
		Directory: client.DirectoryFunc(c.cache.Relays),
		Prebuilt:  -1, // circuits are built when the traffic model asks
		// Every relay of a simulated network is new; like a local test
		// network it waives the guard and exit ages (specs/10 §3.6,
		// §4.1) unless told otherwise.
		MinGuardAge: orWaived(n.cfg.MinGuardAge),
		MinExitAge:  orWaived(n.cfg.MinExitAge),
	})
	if err != nil {
		c.close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { defer close(c.done); c.mgr.Run(ctx) }()
	return c, nil
}

// orWaived is age, or the value that waives an age rule if it is zero.
func orWaived(age time.Duration) time.Duration {
	if age == 0 {
		return -1
	}
	return age
}

// join takes the first view, as `obol proxy` does at start; with samples
// it bootstraps into the DHT first.
func (c *simClient) join(ctx context.Context, cfg Config) error {
	c.joined = time.Now()
	if c.node != nil {
		bctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := c.node.Bootstrap(bctx)
		cancel()
		if err != nil {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return c.discover(sctx, cfg)
}

// discover takes one round of discovery: a view sync from three relays
// (the bootstrap relays and those the view holds), or a DHT sample.
func (c *simClient) discover(ctx context.Context, cfg Config) error {
	if cfg.Discovery == DiscoveryView {
		_, err := c.views.Sync(ctx, view.Candidates(c.boot, c.cache.Relays()))
		return err
	}
	_, err := c.node.Sample(ctx, cfg.Sample, c.cache, nil)
	if errors.Is(err, dht.ErrShortSample) {
		err = nil
	}
	return err
}

// keepFresh is the proxy's discovery loop. With views: sync rounds after
// 1 s, 2 s, 4 s, … up to every 10 min (a quarter of the descriptor
// lifetime if that is shorter), as node.Client.KeepFresh. With
// samples: a new sample every resample, and in between the renewal of
// descriptors past half their lifetime.
func (c *simClient) keepFresh(ctx context.Context, cfg Config) {
	if cfg.Discovery == DiscoveryView {
		every := min(node.ViewEvery, cfg.Lifetime/4)
		for next := time.Second; ctx.Err() == nil; next = min(2*next, every) {
			sleep(ctx, next)
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			c.discover(sctx, cfg)
			cancel()
		}
		return
	}
	refresh := time.NewTicker(min(time.Minute, cfg.Resample))
	defer refresh.Stop()
	full := time.NewTicker(cfg.Resample)
	defer full.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-full.C:
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			c.node.Sample(sctx, cfg.Sample, c.cache, nil)
			cancel()
		case <-refresh.C:
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			c.node.Refresh(sctx, c.cache)
			cancel()
		}
	}
}

// view is the set of relays the client knows.
func (c *simClient) view() map[peer.ID]bool {
	out := map[peer.ID]bool{}
	for _, r := range c.cache.Relays() {
		out[r.PeerID] = true
	}
	return out
}

func (c *simClient) stop() {
	c.once.Do(func() {
		c.cancel()
		<-c.done
		c.close()
	})
}

func (c *simClient) close() {
	c.links.Close()
	if c.node != nil {
		c.node.Close()
	}
	c.host.Close()
}

// peersSeen is how many peers c has ever had a connection with: each saw
// its address.
func (c *simClient) peersSeen() int {
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	return len(c.seen)
}

// guards are the client's guards that its view holds, where they listen.
func (c *simClient) guards() []peer.AddrInfo {
	if c.mgr == nil {
		return nil
	}
	return view.Held(c.cache, c.mgr.Guards())
}
