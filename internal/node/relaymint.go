package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/pay"
)

// MintPaths shapes the circuits a paid relay reaches its mint through.
// Zero values pick client.Config's defaults.
type MintPaths struct {
	// Hops is the circuits' length (default 3).
	Hops int
	// AllowSameSubnet, MinGuardAge and MinExitAge are client.Config's:
	// for local test networks, whose relays share one /16 and are all new.
	AllowSameSubnet         bool
	MinGuardAge, MinExitAge time.Duration
}

// MintGuardFile, in a paid relay's data directory, holds the guards of
// the circuits it reaches its mint through.
const MintGuardFile = "mint-guards.json"

// relayMint carries a paid relay's requests to its mint through circuits
// of the obol network, as a client's wallet does, unless the operator asked
// for a direct connection. The circuits are built by a manager of their
// own on a libp2p host of their own — a fresh peer ID, on the relay's
// addresses with ephemeral ports — so that their guards see a client, not
// the relay; paths come from the relay's view and never hold the relay
// itself. Every operation (a keyset fetch, each request of a settlement)
// has a fresh isolation key, so no two share a circuit; a .obol mint is
// reached as a hidden service. The circuits run on the relays' free
// allowances (pay.MintPay): a close funds nothing.
type relayMint struct {
	host  host.Host
	links *link.Manager
	mgr   *client.CircuitManager
	hs    *hidden.Connector
}

// openRelayMint builds the relay's way to its mint. It dials nothing.
func openRelayMint(c RelayConfig, self peer.ID, view client.Directory, listen []ma.Multiaddr) (*relayMint, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, err := dht.NewHost(dht.HostConfig{Identity: key, Listen: ephemeral(listen)})
	if err != nil {
		return nil, fmt.Errorf("relay: mint circuits: %w", err)
	}
	m := &relayMint{host: h, links: link.NewManager(h, link.Config{Logger: c.Logger})}
	usable := func(d *descriptor.Relay) bool { return d.PeerID != self && pay.MintUsable(d) }
	dir := client.DirectoryFunc(func() []*descriptor.Relay {
		var out []*descriptor.Relay
		for _, d := range view.Relays() {
			if usable(d) {
				out = append(out, d)
			}
		}
		return out
	})
	cfg := client.Config{Links: m.links, Directory: dir, Hops: c.MintPaths.Hops, Prebuilt: -1,
		AllowSameSubnet: c.MintPaths.AllowSameSubnet, MinGuardAge: c.MintPaths.MinGuardAge, MinExitAge: c.MintPaths.MinExitAge,
		GuardFile: filepath.Join(c.DataDir, MintGuardFile), Logger: c.Logger, Usable: usable, Pay: pay.MintPay}
	if m.mgr, err = client.NewCircuitManager(cfg); err != nil {
		h.Close()
		return nil, fmt.Errorf("relay: mint circuits: %w", err)
	}
	if m.hs, err = hidden.NewConnector(hidden.Config{Links: m.links, Directory: dir, Pay: pay.MintPay, Logger: c.Logger, Entry: m.mgr}); err != nil {
		h.Close()
		return nil, fmt.Errorf("relay: mint circuits: %w", err)
	}
	m.links.Start()
	return m, nil
}

// transport is the receiver's MintTransport.
func (m *relayMint) transport() pay.MintTransport {
	return pay.CircuitTransport(m.mgr.DialConnected, m.hs.Dial)
}

// run keeps the manager's guards until ctx ends.
func (m *relayMint) run(ctx context.Context) { m.mgr.Run(ctx) }

// close closes the circuits and the host.
func (m *relayMint) close() error {
	return errors.Join(m.hs.Close(), m.links.Close(), m.host.Close())
}

// ephemeral are the IP transport addresses of addrs with port 0: the
// relay's interfaces, so that the mint circuits leave from the relay's
// address as any client on its host would.
func ephemeral(addrs []ma.Multiaddr) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range addrs {
		parts := strings.Split(a.String(), "/")
		// "", ip4|ip6, address, tcp|udp, port, ...
		if len(parts) < 5 || (parts[1] != "ip4" && parts[1] != "ip6") || (parts[3] != "tcp" && parts[3] != "udp") {
			continue
		}
		parts[4] = "0"
		if s := strings.Join(parts, "/"); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// mintRunner runs the relay's mint circuits beside the relay and keeps
// them up until the relay has settled at shutdown.
type mintRunner struct {
	m      *relayMint
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func (r *mintRunner) start(m *relayMint) {
	ctx, cancel := context.WithCancel(context.Background())
	r.m, r.cancel = m, cancel
	r.done.Go(func() { m.run(ctx) })
}

func (r *mintRunner) stop() {
	if r.cancel != nil {
		r.cancel()
		r.done.Wait()
	}
}
