package dht

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/descriptor"
)

// partition is a connection gater shared by the nodes of a test: while
// cut is set, nodes on different sides can neither dial nor accept each
// other, as across a link that is down.
type partition struct {
	cut  atomic.Bool
	mu   sync.Mutex // guards side
	side map[peer.ID]int
}

// gater is node self's view of the partition.
type gater struct {
	p    *partition
	self peer.ID
}

func (g gater) blocked(other peer.ID) bool {
	if !g.p.cut.Load() {
		return false
	}
	g.p.mu.Lock()
	defer g.p.mu.Unlock()
	return g.p.side[g.self] != g.p.side[other]
}

func (g gater) InterceptPeerDial(p peer.ID) bool                 { return !g.blocked(p) }
func (g gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.blocked(p) }
func (g gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.blocked(p)
}
func (g gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// islandNode is a DHT server on loopback, on one side of a partition, with
// a signer of its own descriptors.
type islandNode struct {
	key  crypto.PrivKey
	node *Node
}

func startIslandNode(t *testing.T, p *partition, side int, boot []peer.AddrInfo) islandNode {
	t.Helper()
	key, id := newKey(t)
	p.mu.Lock()
	p.side[id] = side
	p.mu.Unlock()
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.ConnectionGater(gater{p: p, self: id}), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	n, err := Open(h, Config{Mode: ModeServer, Bootstrap: boot})
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); h.Close() })
	if len(boot) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return islandNode{key: key, node: n}
}

func (in islandNode) id() peer.ID { return in.node.host.ID() }

// sign describes the node as a relay living for an hour.
func (in islandNode) sign(seq uint64, now time.Time) ([]byte, error) {
	r := &descriptor.Relay{
		Version: descriptor.Version, PeerID: in.id(), Seq: seq, Roles: descriptor.RoleRelay,
		Published: now.Unix(), Expires: now.Add(time.Hour).Unix(),
		Bandwidth: 1, Protocols: []uint16{1},
		OnionKeys: []descriptor.OnionKey{{NotAfter: now.Add(48 * time.Hour).Unix()}},
	}
	rand.Read(r.OnionKeys[0].Key[:])
	for _, a := range in.node.host.Addrs()[:1] {
		r.Addrs = append(r.Addrs, a.Bytes())
	}
	return descriptor.Sign(in.key, r)
}

// split cuts the partition, closes the connections across it and drops
// each side from the other's routing tables, as a partition does once
// queries across it have failed.
func split(p *partition, a, b []islandNode) {
	p.cut.Store(true)
	for _, x := range a {
		for _, y := range b {
			x.node.host.Network().ClosePeer(y.id())
			y.node.host.Network().ClosePeer(x.id())
			x.node.kad.RoutingTable().RemovePeer(y.id())
			y.node.kad.RoutingTable().RemovePeer(x.id())
		}
	}
}

// After a partition, an island whose routing tables hold only each other
// finds the rest of the network again through its bootstrap peer, and its
// next descriptor reaches the other side: kad-dht alone would reconnect
// only once a table were empty.
func TestPublisherRejoinsAfterPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	p := &partition{side: map[peer.ID]int{}}
	seed := startIslandNode(t, p, 0, nil)
	boot := []peer.AddrInfo{{ID: seed.id(), Addrs: seed.node.host.Addrs()}}
	near := []islandNode{seed, startIslandNode(t, p, 0, boot), startIslandNode(t, p, 0, boot)}
	var far []islandNode
	for range 3 {
		far = append(far, startIslandNode(t, p, 1, boot))
	}
	all := append(append([]islandNode(nil), near...), far...)
	waitTables(t, all, len(all)-1)

	split(p, near, far)
	for _, in := range all {
		if got := in.node.RoutingTableSize(); got != 2 {
			t.Fatalf("after the split a routing table holds %d peers, want 2", got)
		}
	}
	p.cut.Store(false) // the link is back; nothing crosses it yet

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub := NewPublisher(far[0].node, far[0].sign, time.Hour)
	done := make(chan error, 1)
	go func() { done <- pub.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for {
		lctx, lcancel := context.WithTimeout(ctx, time.Second)
		_, _, err := near[1].node.LookupRelay(lctx, far[0].id())
		lcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the far island's descriptor never reached the near side: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitTables waits until every node's routing table holds want peers.
func waitTables(t *testing.T, nodes []islandNode, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, in := range nodes {
		for in.node.RoutingTableSize() < want {
			if time.Now().After(deadline) {
				t.Fatalf("a routing table holds %d peers, want %d", in.node.RoutingTableSize(), want)
			}
			in.node.closestPeers(context.Background(), string(in.id()))
		}
	}
}

// A node whose dials failed through a long cut has the peers across it
// in libp2p's dial backoff (5 s plus a second per failure squared): once
// the link is back, rejoin dials its bootstrap peer through the backoff
// and forgets the backoff of the other peers, instead of staying off
// them for minutes.
func TestRejoinDialsThroughBackoff(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	p := &partition{side: map[peer.ID]int{}}
	seed := startIslandNode(t, p, 0, nil)
	boot := []peer.AddrInfo{{ID: seed.id(), Addrs: seed.node.host.Addrs()}}
	near := []islandNode{seed, startIslandNode(t, p, 0, boot)}
	far := []islandNode{startIslandNode(t, p, 1, boot)}
	waitTables(t, append(near, far...), 2)

	split(p, near, far)
	p.cut.Store(false) // the link is back, but the failed dials are remembered
	h := far[0].node.host
	back := h.Network().(*swarm.Swarm).Backoff()
	for _, n := range near {
		for range 12 {
			for _, a := range n.node.host.Addrs() {
				back.AddBackoff(n.id(), a)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, boot[0]); !errors.Is(err, swarm.ErrDialBackoff) {
		t.Fatalf("a plain dial after the failures: %v, want the dial backoff", err)
	}
	far[0].node.rejoin(ctx)
	// What rejoin does itself, checked as it returns: it dialed the
	// bootstrap peer through the backoff, and it forgot the backoff of
	// every other peer. (Whether kad-dht then takes the peer into its
	// table, and what its own walks dial afterwards, is kad-dht's
	// business and its timing: TestPublisherRejoinsAfterPartition checks
	// the tables.)
	if h.Network().Connectedness(seed.id()) != network.Connected {
		t.Fatal("rejoin did not dial the bootstrap peer through the dial backoff")
	}
	for _, n := range near {
		for _, a := range n.node.host.Addrs() {
			if back.Backoff(n.id(), a) {
				t.Fatalf("after rejoin, the dial backoff of %s at %v is still held", n.id().ShortString(), a)
			}
		}
	}
}
