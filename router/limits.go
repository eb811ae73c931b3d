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

// Defaults of the relay-wide limit on new circuits. Per-peer limits do not
// bound a flood from many peers (peer IDs cost nothing), so the CPU the
// relay spends on handshakes is bounded as a whole too: 2000 handshakes a
// second are about a tenth of one core. Over it, CREATEs are dropped like
// those over a peer's rate; an honest client whose CREATE is dropped times
// out and builds through another relay.
const (
	DefaultCreateRateTotal  = 2000 // per second
	DefaultCreateBurstTotal = 4000
)

// DefaultMaxStreams bounds the exit streams of one circuit.
const DefaultMaxStreams = 512

// DefaultMaxExitStreams bounds the exit streams of the whole relay. Each
// holds a socket and two goroutines with their buffers, so a client that
// opens streams to a destination that never answers (or never reads) must
// run out before the relay runs out of file descriptors or memory. The
// per-circuit limit (Config.MaxStreams) stops one circuit first.
const DefaultMaxExitStreams = 8192

// maxLimitedPeers bounds the limiter table.
const maxLimitedPeers = 4096

// createLimiter refuses CREATEs beyond a per-peer and a relay-wide rate.
type createLimiter struct {
	rate  rate.Limit
	burst int
	total *rate.Limiter // nil: no relay-wide limit

	mu    sync.Mutex // guards peers
	peers map[peer.ID]*rate.Limiter

	refused atomic.Uint64
}

func newCreateLimiter(perSecond float64, burst int, total float64, totalBurst int) *createLimiter {
	if perSecond < 0 {
		return nil // unlimited
	}
	l := &createLimiter{rate: rate.Limit(perSecond), burst: burst, peers: map[peer.ID]*rate.Limiter{}}
	if total >= 0 {
		l.total = rate.NewLimiter(rate.Limit(total), totalBurst)
	}
	return l
}

// allow reports whether p may create a circuit now: within its own rate,
// unless it is a relay, and within the relay-wide one. A nil limiter
// allows everything.
func (l *createLimiter) allow(p peer.ID, relay bool) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if relay {
		if l.total == nil || l.total.AllowN(now, 1) {
			return true
		}
		l.refused.Add(1)
		return false
	}
	lim := l.peers[p]
	if lim == nil {
		if len(l.peers) >= maxLimitedPeers {
			clear(l.peers) // a full bucket for everyone is the safe side
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.peers[p] = lim
	}
	if lim.AllowN(now, 1) && (l.total == nil || l.total.AllowN(now, 1)) {
		return true
	}
	l.refused.Add(1)
	return false
}
