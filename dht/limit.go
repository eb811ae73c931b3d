package dht

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Defaults of the per-peer limit on PUT_VALUE requests a DHT server
// handles: a relay republishes once per interval, so a peer that puts
// many records a second is flooding.
const (
	DefaultPutRate  = 5  // per second, per peer
	DefaultPutBurst = 20 // requests a peer may send at once
)

// maxLimitedPeers bounds the limiter table; idle entries are dropped.
const maxLimitedPeers = 4096

// putLimiter drops PUT_VALUE requests beyond a per-peer rate. It runs as
// kad-dht's request hook, before the message is handled: a dropped
// request gets no handler, so its stream is closed and nothing is
// validated or stored — other peers are not slowed down.
type putLimiter struct {
	rate  rate.Limit
	burst int

	peers peerLimits

	dropped atomic.Uint64
	observe func(key string) // Config.OnQuery; set before use
}

func newPutLimiter(perSecond float64, burst int) *putLimiter {
	return &putLimiter{rate: rate.Limit(perSecond), burst: burst, peers: newPeerLimits(maxLimitedPeers)}
}

// hook is the kad-dht OnRequestHook.
func (l *putLimiter) hook(_ context.Context, s network.Stream, req *pb.Message) {
	if req.GetType() != pb.Message_PUT_VALUE {
		if l.observe != nil && len(req.GetKey()) > 0 {
			l.observe(string(req.GetKey()))
		}
		return
	}
	if !l.allow(s.Conn().RemotePeer(), time.Now()) {
		l.dropped.Add(1)
		req.Type = pb.Message_MessageType(-1) // no handler: the request is dropped
	}
}

func (l *putLimiter) allow(p peer.ID, now time.Time) bool {
	return l.peers.allow(p, now, l.rate, l.burst)
}

// peerLimits is a token bucket per peer in a table of at most max
// entries: when it is full, peers not seen for a minute (whose buckets
// are full again by then anyway) are forgotten, or, if none are, the
// whole table.
type peerLimits struct {
	max int

	mu    sync.Mutex // guards peers
	peers map[peer.ID]*peerLimit
}

type peerLimit struct {
	lim  *rate.Limiter
	seen time.Time
}

func newPeerLimits(max int) peerLimits {
	return peerLimits{max: max, peers: map[peer.ID]*peerLimit{}}
}

// allow takes a token from p's bucket, created with rate r and burst b
// the first time p is seen.
func (t *peerLimits) allow(p peer.ID, now time.Time, r rate.Limit, b int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	pl := t.peers[p]
	if pl == nil {
		if len(t.peers) >= t.max {
			for q, idle := range t.peers {
				if now.Sub(idle.seen) > time.Minute {
					delete(t.peers, q)
				}
			}
			if len(t.peers) >= t.max {
				clear(t.peers)
			}
		}
		pl = &peerLimit{lim: rate.NewLimiter(r, b)}
		t.peers[p] = pl
	}
	pl.seen = now
	return pl.lim.AllowN(now, 1)
}
