package hidden

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Admission of introductions. Every INTRODUCE2 that reaches the service
// is counted once in IntroStats and ends in exactly one of its outcomes;
// none is dropped without a count.
//
//	arrival ──malformed, other key, replay──► Refused
//	   │
//	   ▼
//	queue of its intro point (MaxQueued) ──full: the lowest effort, oldest first──► Dropped
//	   │  highest effort first, then round-robin over the intro points
//	   │  and oldest first, when a slot is free
//	   ├──waited longer than QueueWait──► Expired
//	   ▼
//	rendezvous (MaxRendezvous at once): handshake, then
//	   ├──its rendezvous point has MaxPerRendezvousPoint under way──► Busy
//	   ├──handshake or circuit failed, RendezvousTimeout passed──► Failed
//	   ▼
//	Joined
//
// A flood through one intro point pushes out only that intro point's
// queue, and the clients who introduce themselves elsewhere are served
// in turn; a flood that names rendezvous points that never answer holds
// a slot for RendezvousTimeout at most, and no more than
// MaxPerRendezvousPoint slots per point.

// IntroStats counts the introductions a service received and what became
// of them. Received = Refused + Dropped + Expired + Busy + Failed + Joined
// + Queued + Running at any moment.
type IntroStats struct {
	Received uint64 // INTRODUCE2 cells that reached the service
	Refused  uint64 // malformed, for another auth key, or replayed
	Dropped  uint64 // lost to a full queue (the lowest effort, oldest first)
	Expired  uint64 // waited in the queue longer than QueueWait
	Busy     uint64 // named a rendezvous point with too many under way
	Failed   uint64 // handshake failed, or the rendezvous circuit failed or timed out
	Joined   uint64 // met the client at its rendezvous point
	// Preempted rendezvous were stopped before the client joined, their
	// slot given to an introduction that proved more effort
	Preempted uint64
	Queued    int    // waiting now
	Running   int    // rendezvous under way now
	Proved    uint64 // of Received, those that showed a valid proof of work
}

// Outcomes of one rendezvous other than failure.
var (
	errRefused = errors.New("hidden: introduction refused")
	errBusy    = errors.New("hidden: rendezvous point has too many rendezvous under way")
)

// pendingIntro is one introduction waiting for, or holding, a slot.
type pendingIntro struct {
	ip      *introPoint
	acc     *accepted // the handshake, opened on arrival
	effort  uint32    // the proof of work it showed (pow.go)
	arrived time.Time
	rp      peer.ID // the rendezvous point claimed, once known
	// while it holds a slot: stops its rendezvous, and whether a
	// higher-effort introduction did so
	cancel    context.CancelFunc
	preempted bool
}

// admission queues introductions per intro point and runs them with at
// most maxRunning at once.
type admission struct {
	maxRunning, maxQueued, perPoint int
	maxWait                         time.Duration
	now                             func() time.Time
	logger                          *slog.Logger
	// run carries out one rendezvous; it calls claim with the rendezvous
	// point once the handshake names it, and stops with errBusy if claim
	// refuses.
	run func(ctx context.Context, it *pendingIntro, claim func(peer.ID) bool) error

	wg sync.WaitGroup // rendezvous under way

	mu       sync.Mutex // guards the fields below
	queues   map[*introPoint][]*pendingIntro
	ring     []*introPoint // intro points with a non-empty queue, in turn
	next     int
	toRP     map[peer.ID]int
	running  map[*pendingIntro]struct{} // holding a slot
	stats    IntroStats
	lost     lostSince // since the service last looked (takeLost)
	lastWarn time.Time
	closed   bool
}

func newAdmission(cfg ServiceConfig, run func(context.Context, *pendingIntro, func(peer.ID) bool) error) *admission {
	return &admission{maxRunning: cfg.MaxRendezvous, maxQueued: cfg.MaxQueued, perPoint: cfg.MaxPerRendezvousPoint,
		maxWait: cfg.QueueWait, now: cfg.Now, logger: cfg.Logger, run: run,
		queues: map[*introPoint][]*pendingIntro{}, toRP: map[peer.ID]int{}, running: map[*pendingIntro]struct{}{}}
}

// refused counts an introduction refused on arrival.
func (a *admission) refused() {
	a.mu.Lock()
	a.stats.Received++
	a.stats.Refused++
	a.mu.Unlock()
}

// add queues an introduction that passed the checks on arrival, pushing
// out its intro point's oldest if the queue is full, and starts what the
// free slots allow.
func (a *admission) add(ctx context.Context, it *pendingIntro) {
	a.mu.Lock()
	a.stats.Received++
	if it.effort > 0 {
		a.stats.Proved++
	}
	q := a.queues[it.ip]
	if len(q) == 0 {
		a.ring = append(a.ring, it.ip)
	}
	if len(q) >= a.maxQueued {
		// Full: the lowest effort goes, the oldest of equals, which may
		// be the newcomer.
		low := 0
		for i, x := range q {
			if x.effort < q[low].effort {
				low = i
			}
		}
		a.stats.Dropped++
		a.warnLocked()
		if it.effort <= q[low].effort {
			a.lost.add(it.effort)
			a.mu.Unlock()
			return
		}
		a.lost.add(q[low].effort)
		q = append(q[:low:low], q[low+1:]...)
	} else {
		a.stats.Queued++
	}
	a.queues[it.ip] = append(q, it)
	if a.stats.Running >= a.maxRunning {
		a.preemptLocked(it.effort)
	}
	a.mu.Unlock()
	a.dispatch(ctx)
}

// preemptLocked stops the rendezvous under way with the lowest effort, if
// that is below effort and it has not been stopped yet: a slot held by a
// cheap introduction — one that names a rendezvous point that never
// answers, say — goes at once to one that proved more, instead of after
// the rendezvous timeout. a.mu is held.
func (a *admission) preemptLocked(effort uint32) {
	var low *pendingIntro
	for r := range a.running {
		if !r.preempted && r.effort < effort && (low == nil || r.effort < low.effort) {
			low = r
		}
	}
	if low != nil {
		low.preempted = true
		low.cancel()
	}
}

// warnLocked says, at most once a minute, that introductions are lost to
// load, with the counts only. a.mu is held.
func (a *admission) warnLocked() {
	now := a.now()
	if now.Sub(a.lastWarn) < time.Minute {
		return
	}
	a.lastWarn = now
	s := a.stats
	a.logger.Warn("introductions dropped under load", "received", s.Received, "dropped", s.Dropped,
		"expired", s.Expired, "busy", s.Busy, "failed", s.Failed, "joined", s.Joined)
}

// pop takes the introduction with the highest effort, the intro points
// taking turns among equals and each intro point's oldest first; it
// counts and discards those that waited too long. nil if none waits.
// a.mu is held.
func (a *admission) pop() *pendingIntro {
	now := a.now()
	a.expire(now)
	if len(a.ring) == 0 {
		return nil
	}
	bestRing, bestPos := -1, -1
	for k := range a.ring {
		r := (a.next + k) % len(a.ring)
		for i, it := range a.queues[a.ring[r]] {
			if bestRing < 0 || it.effort > a.queues[a.ring[bestRing]][bestPos].effort {
				bestRing, bestPos = r, i
			}
		}
	}
	ip := a.ring[bestRing]
	q := a.queues[ip]
	it := q[bestPos]
	a.stats.Queued--
	if len(q) == 1 {
		delete(a.queues, ip)
		a.ring = append(a.ring[:bestRing], a.ring[bestRing+1:]...)
		a.next = bestRing
	} else {
		a.queues[ip] = append(q[:bestPos:bestPos], q[bestPos+1:]...)
		a.next = bestRing + 1
	}
	return it
}

// expire discards the introductions that waited longer than maxWait.
// a.mu is held.
func (a *admission) expire(now time.Time) {
	for i := 0; i < len(a.ring); {
		ip := a.ring[i]
		q := slices.DeleteFunc(a.queues[ip], func(it *pendingIntro) bool {
			if now.Sub(it.arrived) <= a.maxWait {
				return false
			}
			a.lost.add(it.effort)
			return true
		})
		if n := len(a.queues[ip]) - len(q); n > 0 {
			a.stats.Queued -= n
			a.stats.Expired += uint64(n)
			a.warnLocked()
		}
		if len(q) == 0 {
			delete(a.queues, ip)
			a.ring = append(a.ring[:i], a.ring[i+1:]...)
			if a.next > i {
				a.next--
			}
			continue
		}
		a.queues[ip] = q
		i++
	}
}

// dispatch starts rendezvous while slots are free and introductions wait.
func (a *admission) dispatch(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for !a.closed && ctx.Err() == nil && a.stats.Running < a.maxRunning {
		it := a.pop()
		if it == nil {
			return
		}
		a.stats.Running++
		rctx, cancel := context.WithCancel(ctx)
		it.cancel = cancel
		a.running[it] = struct{}{}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			err := a.run(rctx, it, func(rp peer.ID) bool { return a.claim(it, rp) })
			cancel()
			a.finish(it, err)
			a.dispatch(ctx)
		}()
	}
}

// claim reserves one of the rendezvous point's places for it.
func (a *admission) claim(it *pendingIntro, rp peer.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.toRP[rp] >= a.perPoint {
		return false
	}
	a.toRP[rp]++
	it.rp = rp
	return true
}

// finish counts a rendezvous's outcome and frees its slot and place.
func (a *admission) finish(it *pendingIntro, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.Running--
	delete(a.running, it)
	if it.rp != "" {
		if a.toRP[it.rp]--; a.toRP[it.rp] == 0 {
			delete(a.toRP, it.rp)
		}
	}
	switch {
	case err == nil:
		a.stats.Joined++
	case it.preempted:
		a.stats.Preempted++
		a.lost.add(it.effort)
	case errors.Is(err, errRefused):
		a.stats.Refused++
	case errors.Is(err, errBusy):
		a.stats.Busy++
		a.lost.add(it.effort)
		a.warnLocked()
	default:
		a.stats.Failed++
	}
}

// lostSince counts the introductions lost to load (dropped, expired or
// busy) over a span of time, and the highest effort one of them proved.
type lostSince struct {
	n         uint64
	maxEffort uint32
}

func (l *lostSince) add(effort uint32) {
	l.n++
	l.maxEffort = max(l.maxEffort, effort)
}

// takeLost returns the introductions lost since the last call.
func (a *admission) takeLost() lostSince {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.lost
	a.lost = lostSince{}
	return l
}

// snapshot returns the counts.
func (a *admission) snapshot() IntroStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// close starts nothing more and waits for the rendezvous under way.
func (a *admission) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.wg.Wait()
}
