package relaynet

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/router"
)

// Options shape a network. The zero Options give relays that are guards
// and exits allowed to reach loopback, on plain loopback links.
type Options struct {
	// Roles are relay i's roles (RoleRelay is always added); default
	// guard and exit. An exit accepts every address and port, loopback
	// included.
	Roles func(i int) descriptor.Role
	// Exit are more options of every exit's policy (a resolver, say).
	Exit []router.PolicyOption
	// Router, if set, adjusts relay r's router configuration at each of
	// its starts (r's index, host and onion key are set).
	Router func(r *Relay, c *router.Config)
	// RelayDirectory, if set, is relay i's router directory in place of
	// the network's (a directory that fails some extends, say).
	RelayDirectory func(i int) router.Directory
	// Host, if set, is relay i's host configuration (its identity is
	// set by the network); default loopback with ephemeral ports.
	Host func(i int) dht.HostConfig
	// Setup, if set, is called at each of relay r's starts once its
	// router is made, before it runs: it may set the router up further
	// and run more of the relay's services (Relay.Go, Relay.Defer).
	Setup func(r *Relay) error
	// Link is emulated in front of every relay's QUIC address.
	Link Link
}

// Network is a set of relays, a directory of them and a client's link
// manager. Close releases everything.
type Network struct {
	Relays []*Relay
	Dir    *Directory
	Links  *link.Manager // the client's, on a host of its own

	opts Options

	mu      sync.Mutex // guards closers
	closers []func()
}

// Open starts n relays and a client link manager.
func Open(n int, o Options) (*Network, error) {
	if o.Roles == nil {
		o.Roles = func(int) descriptor.Role { return descriptor.RoleGuard | descriptor.RoleExit }
	}
	nw := &Network{Dir: NewDirectory(), opts: o}
	for range n {
		if _, err := nw.AddRelay(); err != nil {
			nw.Close()
			return nil, err
		}
	}
	links, _, err := nw.NewLinks()
	if err != nil {
		nw.Close()
		return nil, err
	}
	nw.Links = links
	return nw, nil
}

// AddRelay starts one more relay.
func (nw *Network) AddRelay() (*Relay, error) {
	onion, err := circuit.GenerateOnionKey(randReader)
	if err != nil {
		return nil, err
	}
	r := &Relay{Index: len(nw.Relays), Onion: onion}
	if err := nw.start(r); err != nil {
		return nil, fmt.Errorf("relaynet: relay %d: %w", r.Index, err)
	}
	nw.Relays = append(nw.Relays, r)
	return r, nil
}

// Restart starts relay i again, stopped or not, on a new host with the
// same onion key, as a relay that crashed and came back at a new address.
func (nw *Network) Restart(i int) error {
	r := nw.Relays[i]
	r.Stop()
	if err := nw.start(r); err != nil {
		return fmt.Errorf("relaynet: restart relay %d: %w", i, err)
	}
	return nil
}

// NewLinks starts a link manager on a new host: a client or a service of
// its own. Close closes both.
func (nw *Network) NewLinks() (*link.Manager, host.Host, error) {
	_, h, err := newHost(dht.HostConfig{})
	if err != nil {
		return nil, nil, err
	}
	lm := link.NewManager(h, link.Config{})
	lm.Start()
	nw.onClose(func() { lm.Close(); h.Close() })
	return lm, h, nil
}

// Path is the path through relays idx.
func (nw *Network) Path(idx ...int) []client.Hop {
	p := make([]client.Hop, len(idx))
	for k, i := range idx {
		p[k] = nw.Relays[i].Hop()
	}
	return p
}

// FirstN is the path through relays 0..n-1.
func (nw *Network) FirstN(n int) []client.Hop {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return nw.Path(idx...)
}

// Build builds a circuit from the client's link manager through relays
// idx, waiting at most a minute.
func (nw *Network) Build(ctx context.Context, idx ...int) (*client.Circuit, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := client.Build(ctx, nw.Links, nw.Path(idx...))
	if err != nil {
		return nil, fmt.Errorf("relaynet: build %v: %w", idx, err)
	}
	return c, nil
}

func (nw *Network) onClose(f func()) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.closers = append(nw.closers, f)
}

// Close stops the client link managers and the relays; idempotent.
func (nw *Network) Close() {
	nw.mu.Lock()
	closers := nw.closers
	nw.closers = nil
	nw.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	for _, r := range nw.Relays {
		r.Stop()
	}
}

// TB is what Start needs of a test or benchmark (testing.TB has it).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Start is Open for a test: it fails the test on error and closes the
// network at the test's end.
func Start(t TB, n int, o Options) *Network {
	t.Helper()
	nw, err := Open(n, o)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(nw.Close)
	return nw
}
