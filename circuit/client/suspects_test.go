package client

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A relay whose announced address never answers fails every path it is
// in. The client leaves it out for longer after each failure, up to
// avoidMax, while a live relay that shared one failed path with it is
// back after avoidFor, and one that carried a circuit at once.
func TestSuspicionBacksOffDeadRelays(t *testing.T) {
	dead, live, vouched := peer.ID("dead"), peer.ID("live"), peer.ID("vouched")
	var s suspicion
	now := time.Unix(1_700_000_000, 0)
	s.failed([]peer.ID{dead, live, vouched}, now)
	s.vouch([]peer.ID{vouched})
	if got := s.avoided(now); got[dead] != 1 || got[live] != 1 || len(got) != 2 {
		t.Fatalf("after one failed path, avoided %v; want dead and live, once each", got)
	}

	// The dead relay is tried whenever its avoidance ends and fails
	// again; the live relay is not in those paths.
	want := avoidFor
	for fails := 1; fails <= 9; fails++ {
		if s.avoided(now.Add(want - time.Nanosecond))[dead] != fails {
			t.Fatalf("after %d failures the dead relay is back before %v", fails, want)
		}
		if fails == 1 && len(s.avoided(now.Add(avoidFor))) != 0 {
			t.Fatalf("live relay still avoided %v after its only failure", avoidFor)
		}
		now = now.Add(want)
		if _, ok := s.avoided(now)[dead]; ok {
			t.Fatalf("after %d failures the dead relay is still avoided after %v", fails, want)
		}
		s.expire(now)
		s.failed([]peer.ID{dead}, now)
		want = min(2*want, avoidMax)
	}
	if want != avoidMax {
		t.Fatalf("avoidance grew to %v, want the cap %v", want, avoidMax)
	}

	// A relay that answers again is cleared by the circuit it carries;
	// one that does not fail for avoidMax after its avoidance is forgotten.
	s.vouch([]peer.ID{dead})
	if len(s.avoided(now)) != 0 {
		t.Fatalf("vouched relay still avoided: %v", s.avoided(now))
	}
	s.failed([]peer.ID{dead}, now)
	s.expire(now.Add(avoidFor + avoidMax - time.Nanosecond))
	if len(s.m) != 1 {
		t.Fatalf("relay forgotten before %v past its avoidance: %v", avoidMax, s.m)
	}
	s.expire(now.Add(avoidFor + avoidMax))
	if len(s.m) != 0 {
		t.Fatalf("relays kept %v past their avoidance without a failure: %v", avoidMax, s.m)
	}
}

func TestAvoidance(t *testing.T) {
	for _, tc := range []struct {
		fails int
		want  time.Duration
	}{
		{0, 0}, {-1, 0}, {1, avoidFor}, {2, 2 * avoidFor}, {3, 4 * avoidFor},
		{7, avoidMax}, {8, avoidMax}, {1 << 30, avoidMax},
	} {
		if got := avoidance(tc.fails); got != tc.want {
			t.Errorf("avoidance(%d) = %v, want %v", tc.fails, got, tc.want)
		}
	}
}
