package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/view"
)

// ClientConfig configures a client that takes its view of the relays.
type ClientConfig struct {
	// DataDir holds the descriptor cache; "" keeps it in memory only.
	DataDir   string
	Bootstrap []peer.AddrInfo
	Listen    []string     // default loopback, ephemeral ports
	Logger    *slog.Logger // default: discard
	Now       func() time.Time
}

// Client is a client's host with a view of the network: every relay's
// descriptor, taken from several relays' views (package view) into a
// persistent descriptor cache. Its identity is fresh on every start: a
// client has no reason to be recognisable.
//
// A client does not join the DHT (specs/02, "Who joins the DHT"): the
// relays it ever connects to are its view's sources — its guards, once it
// has them (PreferSources) — and the first hops of its circuits. A DHT
// node would connect it to most relays of the network, each of which
// would then see its address, and would cost it more bytes than
// everything else it does while idle.
type Client struct {
	log   *slog.Logger
	host  host.Host
	cache *dht.Cache
	views *view.Syncer
	now   func() time.Time // the views' clock
	boot  []peer.AddrInfo
	guard atomic.Pointer[func() []peer.ID] // the relays to take the view from first

	closeOnce sync.Once
	closeErr  error
}

// OpenClient starts the client's host and loads its cache. It does not
// contact any peer.
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
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Client{log: log, host: h, cache: cache, boot: cfg.Bootstrap, now: now}
	c.views = view.NewSyncer(h, cache, view.SyncConfig{Now: cfg.Now, Logger: log, Preferred: c.preferred, CloseDropped: true})
	return c, nil
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

// Sample brings the client's view of the network up to date from
// several relays' views and returns every relay it holds (n is the least
// the caller hoped for: fewer come with dht.ErrShortSample). Paths are
// chosen from the whole view, never from a personal sample.
func (c *Client) Sample(ctx context.Context, n int) ([]*descriptor.Relay, error) {
	_, err := c.syncView(ctx)
	rs := c.cache.Relays()
	switch {
	case len(rs) == 0 && err != nil:
		return nil, fmt.Errorf("client: no relay reachable to take the view from: %w", err)
	case len(rs) == 0:
		return nil, fmt.Errorf("client: the relays reached know no relay: %w", dht.ErrShortSample)
	case len(rs) < n:
		return rs, fmt.Errorf("%w: %d of %d", dht.ErrShortSample, len(rs), n)
	}
	return rs, nil
}

// Refresh asks the view's sources for what changed since the last round
// and returns how many descriptors were new or renewed.
func (c *Client) Refresh(ctx context.Context) int {
	rd, _ := c.syncView(ctx)
	return rd.Fetched
}

// CreateClock is the time the client's creates carry: this computer's
// clock moved by its view's sources' (view.Syncer.ClockOffset), so that
// a clock that is off neither gets the client's circuits refused nor
// tells them apart (specs/04-circuit.md §14.2).
func (c *Client) CreateClock() time.Time {
	off, _ := c.views.ClockOffset()
	return c.now().Add(off)
}

// syncView runs one round of the view's sync, from the relays of the
// bootstrap list and of the view itself.
func (c *Client) syncView(ctx context.Context) (view.Round, error) {
	return c.views.Sync(ctx, view.Candidates(c.boot, c.cache.Relays()))
}

// PreferSources makes the relays that guards returns, when the view holds
// them, the first the view is taken from: a client's guards see its
// address anyway, so that its view's sources add no relay that does
// (Tor's directory guards), and no relay serves every client's view —
// without it, every client would keep the bootstrap relays as its
// sources for as long as they answer. The bootstrap relays are asked
// until the client has guards.
func (c *Client) PreferSources(guards func() []peer.ID) { c.guard.Store(&guards) }

// preferred are the preferred sources the view holds.
func (c *Client) preferred() []peer.AddrInfo {
	f := c.guard.Load()
	if f == nil {
		return nil
	}
	return view.Held(c.cache, (*f)())
}

// View is the outcome of the view's last round that reached a source:
// when it ended and how many sources it took the view from.
func (c *Client) View() view.Round { return c.views.Last() }

// Known returns every unexpired relay in the cache.
func (c *Client) Known() []*descriptor.Relay { return c.cache.Relays() }

// Host is the client's libp2p host: its view's sources and its guards
// see it, nobody else.
func (c *Client) Host() host.Host { return c.host }

// Close saves the cache and closes the host. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = errors.Join(c.cache.Save(), c.host.Close())
	})
	return c.closeErr
}

// ViewEvery is the longest a long-running client waits between two
// rounds of its view's sync. Relays gossip among themselves; a client
// learns what changed only when it asks, so this bounds how late it
// learns of a new relay. Each round costs a few hundred bytes per source
// when nothing changed.
const ViewEvery = 10 * time.Minute

// KeepFresh keeps a long-running client's view fresh until ctx ends: a
// round of the view's sync after 1 s, 2 s, 4 s, … (a client that joined a
// young network catches the relays that joined after it), then every
// refreshEvery.
func (c *Client) KeepFresh(ctx context.Context, resample, timeout time.Duration) {
	next := time.Second
	t := time.NewTimer(next)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		rd, err := c.syncView(sctx)
		cancel()
		if rd.Fetched > 0 || err != nil {
			c.log.Debug("view refreshed", "fetched", rd.Fetched, "known", len(c.Known()), "err", err)
		}
		next = min(2*next, c.refreshEvery(resample))
		t.Reset(next)
	}
}

// refreshEvery is how long the client waits between rounds: resample, at
// most ViewEvery, and at most a quarter of the shortest descriptor
// lifetime it holds, so that a relay's renewed descriptor is fetched well
// before the one it replaces expires.
func (c *Client) refreshEvery(resample time.Duration) time.Duration {
	every := min(resample, ViewEvery)
	for _, r := range c.cache.Relays() {
		if l := r.ExpiresAt().Sub(r.PublishedAt()); l > 0 {
			every = min(every, l/4)
		}
	}
	return max(every, time.Second)
}
