package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/router"
)

// Limits on a relay's timing. A descriptor may live at most
// descriptor.MaxLifetime; the publisher must re-put it well before it
// expires, so the republish interval is at most half the lifetime.
const (
	MinLifetime  = time.Minute
	MaxLifetime  = descriptor.MaxLifetime
	MinRepublish = time.Second
)

// Defaults of a relay's configuration.
const (
	// DefaultLifetime is the longest descriptors allow: a client fetches a
	// relay's record about once a lifetime (specs/11-view.md), and learns
	// that a relay stopped from its view's sources, not from expiry.
	DefaultLifetime  = descriptor.MaxLifetime
	DefaultRepublish = 30 * time.Minute
	DefaultBandwidth = 1 << 20 // bytes per second
	// DefaultOnionRotation bounds how long 0-RTT data is exposed to a
	// stolen onion key (specs/04-circuit.md §9, §10). It is the shortest
	// that lets a descriptor of DefaultLifetime name a key for every moment
	// of its life (MaxOnionKeys), since clients fetch a relay's record again
	// only when it nears its expiry.
	DefaultOnionRotation = DefaultLifetime / (descriptor.MaxOnionKeys - 2)
	MinOnionRotation     = time.Minute
)

// RelayConfig configures a relay. Zero values of Lifetime, Republish and
// Bandwidth pick the defaults; Roles always include RoleRelay.
type RelayConfig struct {
	DataDir string   // keys live here
	Listen  []string // multiaddrs; default loopback, ephemeral ports
	// Announce, if set, are the multiaddrs published in the descriptor
	// instead of the listen addresses (e.g. behind NAT or port forwarding).
	Announce  []string
	Bootstrap []peer.AddrInfo // empty for the first relay of a network
	Roles     descriptor.Role
	Bandwidth uint64        // advertised, bytes per second
	Lifetime  time.Duration // of each descriptor
	Republish time.Duration // interval between puts
	Logger    *slog.Logger  // default: discard
	Now       func() time.Time
	// ExitPolicy are the exit rules ("accept *:80,443", "reject *:25");
	// default router.DefaultExitRules when the relay is an exit.
	ExitPolicy []string
	// AllowLoopback lets the exit reach loopback addresses: for local
	// test networks only.
	AllowLoopback bool
	// AllowPrivateDestinations lets the exit's rules open private-use
	// ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7): for
	// private deployments only.
	AllowPrivateDestinations bool
	// Resolver resolves the hosts exit streams name (default
	// net.DefaultResolver).
	Resolver *net.Resolver
	// ExitDial opens the TCP connections of exit streams (default
	// net.Dialer), e.g. from an outbound address of the exit's own, as
	// Tor's OutboundBindAddressExit does.
	ExitDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ExitNoFastOpen keeps the exit from asking for TCP Fast Open on its
	// connections (router.Config.NoFastOpen).
	ExitNoFastOpen bool
	// SkipReachCheck publishes the listen (or announced) addresses even
	// when no other peer confirmed it can dial them: for local test
	// networks only. A relay that listens on loopback alone skips the
	// check anyway.
	SkipReachCheck bool
	// ReachPrivate checks private addresses too, and dials them back for
	// other relays: for test networks in private address ranges only.
	ReachPrivate bool
	// KeptLinks is how many public relays of its view a relay behind a
	// cone NAT keeps a direct connection to, so that an extend to it
	// needs no hole punch (specs/02-dht.md §Kept connections): 0 takes
	// DefaultKeptLinks, a negative number keeps none.
	KeptLinks int
	// OnionRotation is how long one onion key stays current (default a day).
	OnionRotation time.Duration
	// Payment, if set, makes the relay charge for circuits; nil runs it
	// free. Unless it gives a Transport or asks for a direct connection,
	// the relay reaches its mint through circuits of its own, shaped by
	// MintPaths.
	Payment   *pay.RelayPayment
	MintPaths MintPaths
	// NoLinkPadding turns link padding off: the relay sends none and
	// asks its peers to send none (specs/03-link.md, "Link padding").
	NoLinkPadding bool
}

// Validate reports the first invalid field.
func (c *RelayConfig) Validate() error {
	d := c.withDefaults()
	switch {
	case d.DataDir == "":
		return errors.New("relay: no data directory")
	case d.Lifetime < MinLifetime || d.Lifetime > MaxLifetime:
		return fmt.Errorf("relay: lifetime %v outside %v..%v", d.Lifetime, MinLifetime, MaxLifetime)
	case d.Republish < MinRepublish || d.Republish > min(d.Lifetime/2, view.MaxRepublish):
		return fmt.Errorf("relay: republish interval %v outside %v..%v (half the lifetime, and at most %v: the relays take a relay not heard from for %v for gone)", d.Republish, MinRepublish, min(d.Lifetime/2, view.MaxRepublish), view.MaxRepublish, view.Silent)
	case len(d.Announce) > descriptor.MaxAddrs:
		return fmt.Errorf("relay: %d announced addresses, at most %d", len(d.Announce), descriptor.MaxAddrs)
	case d.Roles&^(descriptor.RoleRelay|descriptor.RoleGuard|descriptor.RoleExit|descriptor.RoleIntro|descriptor.RoleRendezvous) != 0:
		return fmt.Errorf("relay: unknown roles %#x", uint16(d.Roles))
	}
	if _, err := announced(d.Announce); err != nil {
		return err
	}
	if d.Payment != nil {
		if err := d.Payment.Validate(); err != nil {
			return err
		}
	}
	if d.OnionRotation < MinOnionRotation {
		return fmt.Errorf("relay: onion key rotation %v shorter than %v", d.OnionRotation, MinOnionRotation)
	}
	// A descriptor names a key for each interval of its lifetime, one
	// more for the interval under way and one for the overlap of a turn.
	if n := descriptor.MaxOnionKeys - 2; d.OnionRotation*time.Duration(n) < d.Lifetime {
		return fmt.Errorf("relay: onion key rotation %v too short for lifetime %v (a descriptor names at most %d keys: the rotation must be at least a %dth of the lifetime)", d.OnionRotation, d.Lifetime, descriptor.MaxOnionKeys, n)
	}
	_, err := d.exitPolicy()
	return err
}

// exitPolicy parses the exit rules; nil when the relay is not an exit.
func (c *RelayConfig) exitPolicy() (*router.ExitPolicy, error) {
	if !c.Roles.Has(descriptor.RoleExit) {
		return nil, nil
	}
	rules := c.ExitPolicy
	if len(rules) == 0 {
		rules = router.DefaultExitRules
	}
	opts := []router.PolicyOption{router.RejectOwnAddrs(router.LocalAddrs)}
	if c.AllowLoopback {
		opts = append(opts, router.AllowLoopback())
	}
	if c.AllowPrivateDestinations {
		opts = append(opts, router.AllowPrivateDestinations())
	}
	if c.Resolver != nil {
		opts = append(opts, router.WithResolver(c.Resolver))
	}
	p, err := router.ParseExitPolicy(rules, opts...)
	if err != nil {
		return nil, fmt.Errorf("relay: exit policy: %w", err)
	}
	return p, nil
}

// announced parses announce addresses and checks they fit a descriptor.
func announced(addrs []string) ([]ma.Multiaddr, error) {
	var out []ma.Multiaddr
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("relay: announce address %q: %w", s, err)
		}
		if len(a.Bytes()) > descriptor.MaxAddrLen {
			return nil, fmt.Errorf("relay: announce address %q is longer than %d bytes", s, descriptor.MaxAddrLen)
		}
		out = append(out, a)
	}
	return out, nil
}

func (c *RelayConfig) withDefaults() RelayConfig {
	d := *c
	d.Roles |= descriptor.RoleRelay
	if d.Lifetime == 0 {
		d.Lifetime = DefaultLifetime
	}
	if d.Republish == 0 {
		d.Republish = DefaultRepublish
	}
	if d.Bandwidth == 0 {
		d.Bandwidth = DefaultBandwidth
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.OnionRotation == 0 {
		d.OnionRotation = DefaultOnionRotation
	}
	return d
}
