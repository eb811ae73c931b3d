package router

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Defaults of the per-peer limit on new circuits. A CREATE costs the relay
// a handshake (X25519, tens of microseconds) even when it is garbage, so
// one peer may not start circuits faster than this; the previous hop is a
// client or a relay forwarding many clients, hence the generous burst.
const (
	DefaultCreateRate  = 200 // per second, per peer
	DefaultCreateBurst = 400
)

// maxLimitedPeers bounds the limiter table.
const maxLimitedPeers = 4096

// createLimiter refuses CREATEs beyond a per-peer rate.
type createLimiter struct {
	rate  rate.Limit
	burst int

	mu    sync.Mutex // guards peers
	peers map[peer.ID]*rate.Limiter

	refused atomic.Uint64
}

func newCreateLimiter(perSecond float64, burst int) *createLimiter {
	if perSecond < 0 {
		return nil // unlimited
	}
	return &createLimiter{rate: rate.Limit(perSecond), burst: burst, peers: map[peer.ID]*rate.Limiter{}}
}

// allow reports whether p may create a circuit now. A nil limiter allows
// everything.
func (l *createLimiter) allow(p peer.ID) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.peers[p]
	if lim == nil {
		if len(l.peers) >= maxLimitedPeers {
			clear(l.peers) // a full bucket for everyone is the safe side
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.peers[p] = lim
	}
	if lim.AllowN(time.Now(), 1) {
		return true
	}
	l.refused.Add(1)
	return false
}
