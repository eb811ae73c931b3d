package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/obolnet/obol/circuit"
)

// Protocol is the libp2p protocol ID of a link channel.
const Protocol protocol.ID = "/obol/link/1"

// protectTag marks connections that carry channels, so the connection
// manager never trims them.
const protectTag = "obol-link"

// Config configures a Manager.
type Config struct {
	// OnCreate handles CREATE cells from peers (relays set it; a pure
	// client leaves it nil and refuses circuits).
	OnCreate CreateFunc
	// MaxQueue bounds each circuit's inbound queue in cells (default
	// 4096: above the largest flow-control window a sender may use).
	MaxQueue int
	// MaxQueuedCells bounds the inbound queues of all circuits together
	// (default DefaultMaxQueuedCells); over it, the circuit with the
	// oldest queued cell is closed.
	MaxQueuedCells int
	// WriteTimeout closes a channel whose peer has taken no cells for
	// this long while some were waiting (default DefaultWriteTimeout).
	WriteTimeout time.Duration
	// MaxChannelsPerPeer bounds the channels one peer may open to this
	// node (default DefaultMaxChannelsPerPeer).
	MaxChannelsPerPeer int
	// Padding configures link padding (padding.go); the zero value pads
	// at the default intervals.
	Padding PaddingConfig
	// Trace, if set, is called with every cell a channel reads or writes
	// (out: written), link cells included, as an observer of the
	// connection that could read the circuit IDs (the peer) sees them.
	// It must not block. For traffic-analysis experiments and tests.
	Trace func(ch *Channel, out bool, circID uint32, cmd circuit.Command)
	// Callback, if set, asks rendezvous rdv to have target, a relay
	// behind a NAT, dial this node back directly (dht.RequestCallback).
	// A channel to such a relay first tries that, through the first
	// rendezvous it publishes, and falls back to a relayed connection
	// and a hole punch. Set it only on a node reachable at the address
	// it reaches others from: a public relay.
	Callback func(ctx context.Context, rdv peer.AddrInfo, target peer.ID) error
	// Forwarders, if set, names peers this node holds direct connections
	// to that target keeps connections to, and that may pass a callback
	// on to it in place of a rendezvous (02 §Callbacks). A callback goes
	// through a rendezvous of target's this node is connected to, else
	// the first forwarder, else target's first rendezvous.
	Forwarders func(target peer.ID) []peer.AddrInfo
	Logger     *slog.Logger
}

// Manager owns a node's channels: at most one it opened per peer, plus
// those peers opened to it.
type Manager struct {
	host host.Host
	cfg  Config

	counts   counters
	shedding sync.Mutex // held by the one running shed

	mu       sync.Mutex // guards the fields below
	out      map[peer.ID]*Channel
	dialing  map[peer.ID]chan struct{}
	all      map[*Channel]struct{}
	inbound  map[peer.ID]int // channels each peer opened to us
	closed   bool
	channels sync.WaitGroup
}

// NewManager returns a manager for h. It starts nothing; call Start.
func NewManager(h host.Host, cfg Config) *Manager {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 4096
	}
	if cfg.MaxQueuedCells <= 0 {
		cfg.MaxQueuedCells = DefaultMaxQueuedCells
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxChannelsPerPeer <= 0 {
		cfg.MaxChannelsPerPeer = DefaultMaxChannelsPerPeer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{host: h, cfg: cfg, out: map[peer.ID]*Channel{},
		dialing: map[peer.ID]chan struct{}{}, all: map[*Channel]struct{}{},
		inbound: map[peer.ID]int{}}
}

// Host is the manager's libp2p host.
func (m *Manager) Host() host.Host { return m.host }

// Start accepts inbound channels until Close.
func (m *Manager) Start() {
	m.host.SetStreamHandler(Protocol, m.handleStream)
}

func (m *Manager) handleStream(s network.Stream) {
	if _, err := m.adopt(s, false); err != nil {
		s.Reset()
	}
}

// adopt wraps s in a channel and runs it until it closes.
func (m *Manager) adopt(s network.Stream, initiator bool) (*Channel, error) {
	ch := newChannel(m, s, initiator)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrChannelClosed
	}
	if !initiator {
		if m.inbound[ch.remote] >= m.cfg.MaxChannelsPerPeer {
			m.mu.Unlock()
			m.counts.refusedChannels.Add(1)
			return nil, ErrTooManyChannels
		}
		m.inbound[ch.remote]++
	}
	m.all[ch] = struct{}{}
	m.channels.Add(1)
	m.mu.Unlock()
	m.host.ConnManager().Protect(ch.remote, protectTag)
	go func() {
		defer m.channels.Done()
		ch.run()
		m.forget(ch)
	}()
	return ch, nil
}

func (m *Manager) forget(ch *Channel) {
	m.mu.Lock()
	delete(m.all, ch)
	if !ch.initiator {
		if m.inbound[ch.remote]--; m.inbound[ch.remote] <= 0 {
			delete(m.inbound, ch.remote)
		}
	}
	if m.out[ch.remote] == ch {
		delete(m.out, ch.remote)
	}
	still := false
	for other := range m.all {
		still = still || other.remote == ch.remote
	}
	m.mu.Unlock()
	if !still {
		m.host.ConnManager().Unprotect(ch.remote, protectTag)
	}
}

// Channel returns the open channel to ai.ID, dialing one if there is
// none. Concurrent calls for one peer share one dial.
func (m *Manager) Channel(ctx context.Context, ai peer.AddrInfo) (*Channel, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrChannelClosed
		}
		if ch := m.out[ai.ID]; ch != nil && ch.Err() == nil {
			m.mu.Unlock()
			return ch, nil
		}
		wait, busy := m.dialing[ai.ID]
		if !busy {
			done := make(chan struct{})
			m.dialing[ai.ID] = done
			m.mu.Unlock()
			ch, err := m.dial(ctx, ai)
			m.mu.Lock()
			delete(m.dialing, ai.ID)
			if err == nil {
				m.out[ai.ID] = ch
			}
			m.mu.Unlock()
			close(done)
			return ch, err
		}
		m.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ErrTooManyChannels refuses an inbound channel from a peer that has
// Config.MaxChannelsPerPeer open already.
var ErrTooManyChannels = errors.New("link: too many channels from this peer")

// ErrUnreachable wraps a failure to open a channel to a peer: try another.
var ErrUnreachable = errors.New("link: peer unreachable")

func (m *Manager) dial(ctx context.Context, ai peer.AddrInfo) (*Channel, error) {
	if len(ai.Addrs) > 0 {
		m.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstoreTTL)
	}
	// Callers decide when to try a peer again (a client's guard set and
	// suspects); libp2p's dial backoff would keep a relay that restarted
	// out of reach for up to five minutes.
	var s network.Stream
	var err error
	if behindRendezvous(ai.Addrs) {
		s, err = m.dialPunched(ctx, ai)
	} else {
		ctx = network.WithForceDirectDial(ctx, "obol link: the caller backs off")
		s, err = m.host.NewStream(ctx, ai.ID, Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return m.adopt(s, true)
}

// Channels is the number of open channels.
func (m *Manager) Channels() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.all)
}

// Close closes every channel and waits for their goroutines to end.
func (m *Manager) Close() error {
	m.host.RemoveStreamHandler(Protocol)
	m.mu.Lock()
	m.closed = true
	chans := make([]*Channel, 0, len(m.all))
	for ch := range m.all {
		chans = append(chans, ch)
	}
	m.mu.Unlock()
	for _, ch := range chans {
		ch.Close()
	}
	m.channels.Wait()
	return nil
}
