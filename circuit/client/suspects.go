package client

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Relays of failed builds are left out of new paths for a while: for
// avoidFor after a relay's first failure, twice that after its second,
// and so on up to avoidMax, counted from its last failure. A relay that
// carries a built circuit is cleared. So a relay whose announced address
// never answers, which fails every path it is in, is tried less and less
// often, while a live relay that shared a path with it is back after
// avoidFor.
const (
	avoidFor = time.Minute
	avoidMax = time.Hour
)

// suspicion is one client's memory of relays in failed builds; the zero
// value is empty. It is not safe for concurrent use; the manager's mu
// guards it.
type suspicion struct {
	m map[peer.ID]suspect
}

type suspect struct {
	fails int       // failed builds since it last carried a circuit
	last  time.Time // the latest of them
}

// failed counts a failed build against each of ids.
func (s *suspicion) failed(ids []peer.ID, now time.Time) {
	if s.m == nil {
		s.m = map[peer.ID]suspect{}
	}
	for _, id := range ids {
		e := s.m[id]
		s.m[id] = suspect{fails: e.fails + 1, last: now}
	}
}

// vouch clears ids, which just carried a built circuit.
func (s *suspicion) vouch(ids []peer.ID) {
	for _, id := range ids {
		delete(s.m, id)
	}
}

// avoidance is how long after its last failure a relay that failed fails
// times is left out.
func avoidance(fails int) time.Duration {
	if fails <= 0 {
		return 0
	}
	if fails > 7 { // avoidFor<<6 passes avoidMax already
		return avoidMax
	}
	return min(avoidFor<<(fails-1), avoidMax)
}

// avoided are the relays still left out at now, with their failure
// counts (choosePath leaves out the most failed first).
func (s *suspicion) avoided(now time.Time) map[peer.ID]int {
	out := make(map[peer.ID]int, len(s.m))
	for id, e := range s.m {
		if now.Sub(e.last) < avoidance(e.fails) {
			out[id] = e.fails
		}
	}
	return out
}

// expire forgets relays that have not failed for avoidMax after their
// avoidance ended. Until then the count is kept, so that a relay that
// fails again when it is tried is left out for longer.
func (s *suspicion) expire(now time.Time) {
	for id, e := range s.m {
		if now.Sub(e.last) >= avoidance(e.fails)+avoidMax {
			delete(s.m, id)
		}
	}
}
