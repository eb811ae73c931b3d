// Package localnet runs a whole obol network in one process on loopback:
// relays (some of them exits) that join a private DHT through the first
// relay and publish their descriptors, and clients that sample them. It
// backs `obol testnet` and end-to-end tests; only cmd and tests import it.
package localnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/pay"
)

// Config shapes a local network.
type Config struct {
	Relays int // at least 2: a lone relay has no one to publish to
	// IsExit says which relays take the exit role (default: every third,
	// starting with relay 1).
	IsExit    func(i int) bool
	Lifetime  time.Duration // descriptor lifetime (default 1h)
	Republish time.Duration // default 15m
	Logger    *slog.Logger  // nodes' logs (default: discard)
	// Progress, if set, is told of every relay that joins and publishes.
	// It may be called from several goroutines at once.
	Progress func(Event)
	// Payment, if set, makes every relay charge on these terms; nil runs
	// free relays.
	Payment *pay.RelayPayment
	// Resolver, if set, resolves the hosts the exits are asked for.
	Resolver *net.Resolver
	// Addr, if set, is relay i's loopback IP address (e.g. 127.0.0.9):
	// tests that watch who connects give each relay its own. Default
	// 127.0.0.1 for all.
	Addr func(i int) string
	// Configure, if set, adjusts relay i's configuration last.
	Configure func(i int, c *node.RelayConfig)
}

// MaxRelays bounds a local network to what one machine runs comfortably.
const MaxRelays = 200

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.Relays < 2 || c.Relays > MaxRelays {
		return fmt.Errorf("localnet: %d relays, want 2..%d", c.Relays, MaxRelays)
	}
	return nil
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.IsExit == nil {
		d.IsExit = func(i int) bool { return i%3 == 1 }
	}
	if d.Lifetime == 0 {
		d.Lifetime = time.Hour
	}
	if d.Republish == 0 {
		d.Republish = 15 * time.Minute
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Progress == nil {
		d.Progress = func(Event) {}
	}
	return d
}

// Network is a running local network.
type Network struct {
	cfg    Config
	dir    string // data directories of every relay
	Relays []*node.Relay
	Roles  []descriptor.Role // Roles[i] is what relay i was configured with

	cancel context.CancelFunc
	wg     sync.WaitGroup // one per running relay
	once   sync.Once
}

// Start opens every relay, starts them joining and publishing, and waits
// until each has joined the DHT and its descriptor can be looked up, or
// ctx ends. On error everything started is stopped again.
func Start(ctx context.Context, cfg Config) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	dir, err := os.MkdirTemp("", "obol-testnet-")
	if err != nil {
		return nil, fmt.Errorf("localnet: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n := &Network{cfg: c, dir: dir, cancel: cancel}
	if err := n.open(); err != nil {
		n.Close()
		return nil, err
	}
	n.run(runCtx)
	if err := n.waitUp(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// open opens the relays; relay 0 is every other relay's bootstrap peer.
func (n *Network) open() error {
	for i := range n.cfg.Relays {
		n.Roles = append(n.Roles, n.roles(i))
		r, err := node.OpenRelay(n.relayConfig(i))
		if err != nil {
			return fmt.Errorf("localnet: relay %d: %w", i, err)
		}
		n.Relays = append(n.Relays, r)
		n.cfg.Progress(Event{Kind: Started, Relay: i, Of: n.cfg.Relays, ID: r.ID()})
	}
	return nil
}

// roles are relay i's roles: every relay is a guard and offers hidden
// services introduction and rendezvous; some are exits.
func (n *Network) roles(i int) descriptor.Role {
	roles := descriptor.RoleRelay | descriptor.RoleGuard | descriptor.RoleIntro | descriptor.RoleRendezvous
	if n.cfg.IsExit(i) {
		roles |= descriptor.RoleExit
	}
	return roles
}

func (n *Network) relayConfig(i int) node.RelayConfig {
	var boot []peer.AddrInfo
	if i > 0 {
		boot = []peer.AddrInfo{n.Relays[0].AddrInfo()}
	}
	var pay *pay.RelayPayment
	if n.cfg.Payment != nil {
		p := *n.cfg.Payment
		// Too small a network leaves a relay no path to an exit
		// without itself: its relays reach the mint directly.
		p.DirectMintConnectionUnsafe = p.DirectMintConnectionUnsafe || (p.Transport == nil && !n.cfg.MintThroughCircuits())
		pay = &p
	}
	c := node.RelayConfig{
		Payment:   pay,
		DataDir:   filepath.Join(n.dir, fmt.Sprintf("relay%d", i)),
		Bootstrap: boot,
		Roles:     n.Roles[i],
		Lifetime:  n.cfg.Lifetime,
		Republish: n.cfg.Republish,
		Logger:    n.cfg.Logger.With("relay", i),
		// The network lives on loopback: its exits must reach the demo
		// servers there.
		AllowLoopback: true,
		Resolver:      n.cfg.Resolver,
		// A relay that reaches its mint through circuits: every relay
		// here shares one /16 and is new.
		MintPaths: node.MintPaths{AllowSameSubnet: true, MinGuardAge: -1, MinExitAge: -1},
		Listen:    n.listen(i),
	}
	if n.cfg.Configure != nil {
		n.cfg.Configure(i, &c)
	}
	return c
}

// listen are relay i's listen addresses: the default unless Addr is set.
func (n *Network) listen(i int) []string {
	if n.cfg.Addr == nil {
		return nil
	}
	ip := n.cfg.Addr(i)
	return []string{"/ip4/" + ip + "/udp/0/quic-v1", "/ip4/" + ip + "/tcp/0"}
}

// mintHops is the length of the circuits a relay reaches its mint
// through (node.MintPaths' default).
const mintHops = 3

// MintThroughCircuits reports whether every relay of the network can
// reach a loopback mint through circuits of its own: a path of mintHops
// relays other than itself, ending at an exit other than itself. With
// the default exits, 5 relays or more.
func (c *Config) MintThroughCircuits() bool {
	d := c.withDefaults()
	exits := 0
	for i := range d.Relays {
		if d.IsExit(i) {
			exits++
		}
	}
	return exits >= 2 && d.Relays-1 >= mintHops
}

// run starts every relay's Run in a goroutine the network owns.
func (n *Network) run(ctx context.Context) {
	for _, r := range n.Relays {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := r.Run(ctx); err != nil {
				r.Logger().Error("relay stopped", "err", err)
			}
		}()
	}
}

// Bootstrap is the address of relay 0, through which nodes join.
func (n *Network) Bootstrap() []peer.AddrInfo {
	return []peer.AddrInfo{n.Relays[0].AddrInfo()}
}

// IDs are the relays' peer IDs in order.
func (n *Network) IDs() []peer.ID {
	ids := make([]peer.ID, len(n.Relays))
	for i, r := range n.Relays {
		ids[i] = r.ID()
	}
	return ids
}

// Close stops every relay (a paid relay settles its channels as it
// stops) and removes their data directories. It is idempotent.
func (n *Network) Close() {
	n.once.Do(func() {
		n.cancel()
		n.wg.Wait()
		var errs []error
		for _, r := range n.Relays {
			errs = append(errs, r.Close())
		}
		errs = append(errs, os.RemoveAll(n.dir))
		if err := errors.Join(errs...); err != nil {
			n.cfg.Logger.Warn("local network did not close cleanly", "err", err)
		}
	})
}
