// Package dht is obol's discovery layer: a libp2p host, a private
// Kademlia DHT (go-libp2p-kad-dht under the /obol protocol prefix) whose
// validators accept only verified obol records, a publisher that keeps a
// relay's descriptor in the DHT, and sampling of relays into a persistent
// descriptor cache. specs/02-dht.md is the protocol definition.
package dht

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	xrate "github.com/libp2p/go-libp2p/x/rate"
)

// HostConfig says how to build a node's libp2p host.
type HostConfig struct {
	Identity crypto.PrivKey // Ed25519; its peer ID names the node
	// Listen are multiaddrs to listen on. QUIC comes first, TCP is the
	// fallback. Default: both on 127.0.0.1 with ephemeral ports.
	Listen []string
	// ConnLow and ConnHigh are the connection manager's watermarks.
	// Connections that carry circuits are protected from trimming by the
	// circuit layer.
	ConnLow, ConnHigh int
	// MaxConns, if set, sizes the resource manager for a relay: that many
	// connections (half of them inbound), four streams per connection.
	// Zero keeps libp2p's limits scaled to the machine, which admit only
	// a few hundred inbound connections — enough for a client, not for a
	// relay that many clients and relays connect to.
	MaxConns int
	// HolePunch lets the host reach and be reached through a circuit
	// relay v2 rendezvous and DCUtR hole punching (relays: a relay behind
	// a cone NAT is reached so, and every relay must answer the punch).
	// Without it the host neither dials nor accepts relayed connections.
	HolePunch bool
}

// relayLimits raises the system-wide limits for max connections, keeping
// libp2p's scaled per-peer and per-protocol limits.
func relayLimits(base rcmgr.ConcreteLimitConfig, max int) rcmgr.ConcreteLimitConfig {
	lv := func(n int) rcmgr.LimitVal { return rcmgr.LimitVal(n) }
	return rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns: lv(max), ConnsInbound: lv(max / 2), ConnsOutbound: lv(max),
			Streams: lv(4 * max), StreamsInbound: lv(2 * max), StreamsOutbound: lv(4 * max),
			FD: lv(max + 1024),
		},
		Transient: rcmgr.ResourceLimits{
			Conns: lv(max / 8), ConnsInbound: lv(max / 16), ConnsOutbound: lv(max / 8),
		},
	}.Build(base)
}

// DefaultListen are the addresses a node listens on when none are given.
var DefaultListen = []string{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"}

// NewHost builds a libp2p host for obol: QUIC and TCP (Noise, yamux), no
// relayed connections unless HolePunch, no NAT port mapping, resource
// limits scaled to the machine.
func NewHost(cfg HostConfig) (host.Host, error) {
	if cfg.Identity == nil || cfg.Identity.Type() != crypto.Ed25519 {
		return nil, errors.New("dht: host identity must be an Ed25519 key")
	}
	listen := cfg.Listen
	if len(listen) == 0 {
		listen = DefaultListen
	}
	low, high := cfg.ConnLow, cfg.ConnHigh
	if low <= 0 {
		low = 64
	}
	if high <= low {
		high = 4 * low
	}
	cm, err := connmgr.NewConnManager(low, high, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("dht: connection manager: %w", err)
	}
	limits := rcmgr.DefaultLimits.AutoScale()
	if cfg.MaxConns > 0 {
		limits = relayLimits(limits, cfg.MaxConns)
	}
	rm, err := newResourceManager(limits, cfg.HolePunch)
	if err != nil {
		return nil, err
	}
	nat := []libp2p.Option{libp2p.DisableRelay()}
	if cfg.HolePunch {
		// The circuit transport (dialing and accepting /p2p-circuit) and
		// DCUtR; the rendezvous service itself is started apart, by a
		// relay found public (StartRendezvous).
		nat = []libp2p.Option{libp2p.EnableRelay(), libp2p.EnableHolePunching()}
	}
	h, err := libp2p.New(
		libp2p.ChainOptions(nat...),
		libp2p.Identity(cfg.Identity),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(quic.NewTransport),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("dht: libp2p host: %w", err)
	}
	return h, nil
}

// newResourceManager is libp2p's resource manager with limits. A host
// that takes relayed connections (holePunch) gets it without its per-IP
// rate limiter, wrapped in relayedConnLimits, which limits direct
// connections per IP address as libp2p does and relayed ones per
// rendezvous: counted by IP address, they would all be their
// rendezvous's.
func newResourceManager(limits rcmgr.ConcreteLimitConfig, holePunch bool) (network.ResourceManager, error) {
	var opts []rcmgr.Option
	if holePunch {
		opts = append(opts, rcmgr.WithConnRateLimiters(&xrate.Limiter{}))
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), opts...)
	if err != nil {
		return nil, fmt.Errorf("dht: resource manager: %w", err)
	}
	if holePunch {
		return newRelayedConnLimits(rm), nil
	}
	return rm, nil
}

// LoadIdentity reads the node's Ed25519 identity from path, creating it
// (mode 0600, directory 0700) on first use.
func LoadIdentity(path string) (crypto.PrivKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createIdentity(path)
	}
	if err != nil {
		return nil, fmt.Errorf("dht: read identity: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("dht: identity file %s is corrupt: %w", path, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("dht: identity file %s does not hold an Ed25519 key", path)
	}
	return k, nil
}

func createIdentity(path string) (crypto.PrivKey, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("dht: write identity: %w", err)
	}
	return k, nil
}

// WriteFileAtomic writes b to path through a temporary file and a rename,
// so a crash leaves either the old or the new content, never a torn file.
func WriteFileAtomic(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
