package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
)

// ClientConfig configures a client that samples relays.
type ClientConfig struct {
	// DataDir holds the descriptor cache; "" keeps it in memory only.
	DataDir   string
	Bootstrap []peer.AddrInfo
	Listen    []string     // default loopback, ephemeral ports
	Logger    *slog.Logger // default: discard
	Now       func() time.Time
}

// Client is a DHT client with a persistent descriptor cache. Its identity
// is fresh on every start: a client has no reason to be recognisable.
type Client struct {
	log   *slog.Logger
	host  host.Host
	node  *dht.Node
	cache *dht.Cache

	closeOnce sync.Once
	closeErr  error
}

// OpenClient starts the client's host and DHT node and loads its cache. It
// does not contact any peer.
func OpenClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Bootstrap) == 0 {
		return nil, errors.New("client: no bootstrap peers")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache, err := openCache(cfg.DataDir, cfg.Now, log)
	if err != nil {
		return nil, err
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, err := dht.NewHost(dht.HostConfig{Identity: key, Listen: cfg.Listen})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	n, err := dht.Open(h, dht.Config{Mode: dht.ModeClient, Bootstrap: cfg.Bootstrap, Logger: log, Now: cfg.Now})
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{log: log, host: h, node: n, cache: cache}, nil
}

func openCache(dir string, now func() time.Time, log *slog.Logger) (*dht.Cache, error) {
	path := ""
	if dir != "" {
		if err := prepareDataDir(dir, log); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		path = filepath.Join(dir, CacheFile)
	}
	c := dht.NewCache(path, now)
	if err := c.Load(); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	log.Debug("loaded descriptor cache", "relays", c.Len())
	return c, nil
}

// Join connects to the bootstrap peers and waits for a routing table.
func (c *Client) Join(ctx context.Context) error {
	if err := c.node.Bootstrap(ctx); err != nil {
		return fmt.Errorf("client: join: %w", err)
	}
	return nil
}

// Sample returns up to n verified relays found by sampling the DHT, and
// dht.ErrShortSample (with what it found) when there were fewer.
func (c *Client) Sample(ctx context.Context, n int) ([]*descriptor.Relay, error) {
	return c.node.Sample(ctx, n, c.cache, nil)
}

// Refresh looks up again the cached descriptors past half their
// lifetime and returns how many were renewed.
func (c *Client) Refresh(ctx context.Context) int { return c.node.Refresh(ctx, c.cache) }

// Known returns every unexpired relay in the cache.
func (c *Client) Known() []*descriptor.Relay { return c.cache.Relays() }

// Node is the client's DHT node.
func (c *Client) Node() *dht.Node { return c.node }

// Close saves the cache, leaves the DHT and closes the host. It is
// idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = errors.Join(c.cache.Save(), c.node.Close(), c.host.Close())
	})
	return c.closeErr
}

// refreshEvery is how often a client looks up again the descriptors it
// holds that are past half their lifetime (cheap: only those).
const refreshEvery = time.Minute

// KeepFresh keeps a long-running client's descriptor cache fresh until ctx
// ends: it samples the DHT again every resample, and in between renews
// the descriptors past half their lifetime, so that the relays it knows —
// its guards among them — do not all expire at once.
func (c *Client) KeepFresh(ctx context.Context, n int, resample, timeout time.Duration) {
	log := c.log
	refresh := time.NewTicker(min(refreshEvery, resample))
	defer refresh.Stop()
	full := time.NewTicker(resample)
	defer full.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-full.C:
			sctx, cancel := context.WithTimeout(ctx, timeout)
			rs, err := c.Sample(sctx, n)
			cancel()
			log.Debug("sampled the DHT", "found", len(rs), "known", len(c.Known()), "err", err)
		case <-refresh.C:
			sctx, cancel := context.WithTimeout(ctx, timeout)
			renewed := c.Refresh(sctx)
			cancel()
			if renewed > 0 {
				log.Debug("renewed descriptors", "count", renewed, "known", len(c.Known()))
			}
		}
	}
}
