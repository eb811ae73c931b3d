package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	kad "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/obolnet/obol/descriptor"
)

// ProtocolPrefix keeps obol's DHT apart from every other Kademlia network;
// its peers never talk to the public IPFS DHT.
const ProtocolPrefix = "/obol"

// Mode is whether a node serves DHT queries (relays) or only asks them
// (clients and hidden services).
type Mode int

// Modes.
const (
	ModeClient Mode = iota
	ModeServer
	// ModeAuto serves queries until the host is found unreachable, and
	// again once it is found reachable: the verdicts of a Reach on the
	// same host (a relay that checks its addresses). A node nobody can
	// dial would only fill others' routing tables with a peer they
	// cannot reach.
	ModeAuto
)

// clientRefreshPeriod is how often a client's routing table is refreshed
// (a server's: kad-dht's 10 min).
const clientRefreshPeriod = time.Hour

// Config configures a DHT node. The zero value of a field picks the
// default named beside it.
type Config struct {
	Mode      Mode
	Bootstrap []peer.AddrInfo  // peers to join through; never IPFS's
	Now       func() time.Time // default time.Now
	Logger    *slog.Logger     // default: discard
	// MaxRecordAge bounds how long a node keeps a stored record after it
	// received it (default 4h, above the longest republish interval).
	MaxRecordAge time.Duration
	// Quorum is how many answers a lookup waits for before it settles on
	// the best record (default 4).
	Quorum int
	// BucketSize is Kademlia's k (default 20).
	BucketSize int
	// PutRate and PutBurst limit the PUT_VALUE requests one peer may send
	// a server (defaults DefaultPutRate per second, DefaultPutBurst).
	PutRate  float64
	PutBurst int
	// LookupPaths is how many disjoint paths a record lookup walks
	// (default DefaultLookupPaths; lookup.go).
	LookupPaths int
	// OnQuery, if set, is called with the key of every query this node
	// serves (GET_VALUE, FIND_NODE; not PUT_VALUE); tests count lookups
	// with it.
	OnQuery func(key string)
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Mode != ModeClient && c.Mode != ModeServer && c.Mode != ModeAuto:
		return fmt.Errorf("dht: unknown mode %d", c.Mode)
	case c.MaxRecordAge < 0, c.Quorum < 0, c.BucketSize < 0, c.PutRate < 0, c.PutBurst < 0, c.LookupPaths < 0:
		return errors.New("dht: negative limit")
	}
	return nil
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.MaxRecordAge == 0 {
		d.MaxRecordAge = 4 * time.Hour
	}
	if d.Quorum == 0 {
		d.Quorum = 4
	}
	if d.BucketSize == 0 {
		d.BucketSize = 20
	}
	if d.PutRate == 0 {
		d.PutRate = DefaultPutRate
	}
	if d.PutBurst == 0 {
		d.PutBurst = DefaultPutBurst
	}
	if d.LookupPaths == 0 {
		d.LookupPaths = DefaultLookupPaths
	}
	return d
}

// Node is a member of obol's private DHT.
type Node struct {
	cfg  Config
	host host.Host
	kad  *kad.IpfsDHT
	val  relayValidator
	puts *putLimiter
	msgr *pb.ProtocolMessenger // the disjoint lookups' own queries

	closeOnce sync.Once
	closeErr  error
}

// Open joins host h to the DHT. It starts kad-dht's own goroutines but does
// no network I/O; call Bootstrap to connect.
func Open(h host.Host, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	mode := kad.ModeClient
	switch c.Mode {
	case ModeServer:
		mode = kad.ModeServer
	case ModeAuto:
		mode = kad.ModeAutoServer // a server until a verdict says otherwise
	}
	puts := newPutLimiter(c.PutRate, c.PutBurst)
	puts.observe = c.OnQuery
	opts := []kad.Option{
		kad.OnRequestHook(puts.hook),
		kad.RoutingTablePeerDiversityFilter(newIPGroupLimiter(h, DefaultMaxPerBucket, DefaultMaxPerTable, c.BucketSize)),
		kad.Mode(mode),
		kad.ProtocolPrefix(ProtocolPrefix),
		kad.Validator(Validator(c.Now)),
		kad.DisableProviders(),
		kad.MaxRecordAge(c.MaxRecordAge),
		kad.BucketSize(c.BucketSize),
		kad.BootstrapPeers(c.Bootstrap...),
	}
	if mode == kad.ModeClient {
		// A client looks records up now and then (hidden services); it
		// has no routing table others rely on. Refreshing it every 10 min,
		// as a server must, was a third of an idle client's bytes.
		opts = append(opts, kad.RoutingTableRefreshPeriod(clientRefreshPeriod))
	}
	k, err := kad.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("dht: start kad-dht: %w", err)
	}
	msgr, err := pb.NewProtocolMessenger(&streamSender{h: h, timeout: rpcTimeout})
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("dht: messenger: %w", err)
	}
	return &Node{cfg: c, host: h, kad: k, val: relayValidator{now: c.Now}, puts: puts, msgr: msgr}, nil
}

// DroppedPuts is how many PUT_VALUE requests the per-peer limit dropped.
func (n *Node) DroppedPuts() uint64 { return n.puts.dropped.Load() }

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Serving reports whether the node serves DHT queries now (a server, or
// ModeAuto while its host is not found unreachable).
func (n *Node) Serving() bool {
	return slices.Contains(n.host.Mux().Protocols(), kadProtocol)
}

// RoutingTableSize is the number of DHT servers in the routing table.
func (n *Node) RoutingTableSize() int { return n.kad.RoutingTable().Size() }

// Bootstrap connects to the configured bootstrap peers and waits until the
// routing table holds at least one peer, so the first query has somewhere
// to go. It fails if no bootstrap peer answers before ctx ends.
func (n *Node) Bootstrap(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, ai := range n.cfg.Bootstrap {
		if ai.ID == n.host.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.host.Connect(ctx, ai); err != nil {
				n.cfg.Logger.Debug("bootstrap peer unreachable", "peer", ai.ID, "err", err)
			}
		}()
	}
	wg.Wait()
	if err := n.kad.Bootstrap(ctx); err != nil {
		return fmt.Errorf("dht: bootstrap: %w", err)
	}
	return n.WaitReady(ctx)
}

// WaitReady blocks until the routing table is not empty.
func (n *Node) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for n.kad.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("dht: no DHT peer reachable: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// rejoin connects to the bootstrap peers missing from the routing table
// and waits, up to ctx, until they are in it. A node cut off from part of
// the network drops the peers it cannot reach from its table, and kad-dht
// goes back to its bootstrap peers only when the table is empty: an island
// with members of its own would never meet the rest of the network again,
// even after the link comes back. After rejoin a walk reaches the other
// side through the bootstrap peers. Peers that do not answer are skipped.
//
// libp2p's dial backoff grows with every failed dial (5 s plus a second
// per failure squared), so after a long cut it would keep the node from
// the other side for minutes after the link came back. Rejoin dials its
// few missing bootstrap peers through the backoff, once per publication,
// and once one answers, forgets the backoff of every peer: the walks
// that follow must reach the other side's peers too.
func (n *Node) rejoin(ctx context.Context) {
	ctx = network.WithForceDirectDial(ctx, "rejoin the network")
	rt := n.kad.RoutingTable()
	var wg sync.WaitGroup
	var back atomic.Bool
	for _, ai := range n.cfg.Bootstrap {
		if ai.ID == n.host.ID() || rt.Find(ai.ID) != "" ||
			n.host.Network().Connectedness(ai.ID) == network.Connected {
			continue // dialing a connected peer again would not re-add it
		}
		wg.Go(func() {
			if err := n.host.Connect(ctx, ai); err != nil {
				n.cfg.Logger.Debug("bootstrap peer unreachable", "peer", ai.ID, "err", err)
				return
			}
			back.Store(true)
			n.waitInTable(ctx, ai.ID)
		})
	}
	wg.Wait()
	if back.Load() {
		n.forgetDialFailures()
	}
}

// forgetDialFailures clears libp2p's dial backoff of every known peer.
func (n *Node) forgetDialFailures() {
	sw, ok := n.host.Network().(interface{ Backoff() *swarm.DialBackoff })
	if !ok {
		return
	}
	for _, p := range n.host.Peerstore().Peers() {
		sw.Backoff().Clear(p)
	}
}

// waitInTable waits until kad-dht, which adds a peer once identify has
// told it the peer is a DHT server, has p in the routing table; at most a
// second, as the diversity limits may keep p out.
func (n *Node) waitInTable(ctx context.Context, p peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for n.kad.RoutingTable().Find(p) == "" {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PutRelay stores a signed relay descriptor under its peer's key. The
// record is validated first, so a node never spreads a bad one.
func (n *Node) PutRelay(ctx context.Context, rec []byte) error {
	u, err := descriptor.Decode(rec)
	if err != nil {
		return err
	}
	key := RelayKey(u.ClaimedPeerID())
	if _, err := n.val.verify(key, rec); err != nil {
		return err
	}
	if err := n.kad.PutValue(ctx, key, rec); err != nil {
		return fmt.Errorf("dht: put relay descriptor: %w", err)
	}
	return nil
}

// ErrNotFound means no valid record for the key was found.
var ErrNotFound = errors.New("dht: not found")

// LookupRelay finds the current descriptor of one relay: by kad-dht's
// own lookup, and if that finds nothing by a disjoint lookup (lookup.go),
// which walks three paths that share no peer, so that one eclipsed region
// of the key space does not hide a relay. The answer has passed the
// validator; it is checked again here against the clock, so an expired
// record is never returned. A lookup cut by its context reports
// ErrNotFound.
func (n *Node) LookupRelay(ctx context.Context, id peer.ID) (*descriptor.Relay, []byte, error) {
	r, rec, err := n.lookupOnce(ctx, id)
	if err == nil || !errors.Is(err, ErrNotFound) || ctx.Err() != nil {
		return r, rec, err
	}
	key := RelayKey(id)
	if rec, err := n.getRecord(ctx, key); err == nil {
		if r, err := n.val.verify(key, rec); err == nil {
			return r, rec, nil
		}
	}
	if ctx.Err() != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotFound, ctx.Err())
	}
	return nil, nil, err
}

func (n *Node) lookupOnce(ctx context.Context, id peer.ID) (*descriptor.Relay, []byte, error) {
	key := RelayKey(id)
	rec, err := n.kad.GetValue(ctx, key, kad.Quorum(n.cfg.Quorum))
	if errors.Is(err, routing.ErrNotFound) || (err == nil && rec == nil) {
		return nil, nil, ErrNotFound
	}
	if err != nil && rec == nil {
		if ctx.Err() != nil { // out of time: nothing found in it
			return nil, nil, fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return nil, nil, fmt.Errorf("dht: lookup: %w", err)
	}
	r, err := n.val.verify(key, rec)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return r, rec, nil
}

// closestPeers runs one Kademlia walk toward key.
func (n *Node) closestPeers(ctx context.Context, key string) ([]peer.ID, error) {
	return n.kad.GetClosestPeers(ctx, key)
}

// Close leaves the DHT; it does not close the host.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.kad.Close() })
	return n.closeErr
}
