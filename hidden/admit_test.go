package hidden

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// testIntro is what a fake rendezvous does with one introduction: claim
// its rendezvous point, then either join at once or hang until released
// (a point that never answers) and fail.
type testIntro struct {
	rp   peer.ID
	hang bool
}

type admitHarness struct {
	t       *testing.T
	a       *admission
	release chan struct{}
	clock   *fakeClock

	mu     sync.Mutex
	intros map[*pendingIntro]testIntro
	joined map[peer.ID]int // by rendezvous point
}

func newAdmitHarness(t *testing.T) *admitHarness {
	h := &admitHarness{t: t, release: make(chan struct{}), clock: &fakeClock{t: time.Unix(1_800_000_000, 0)},
		intros: map[*pendingIntro]testIntro{}, joined: map[peer.ID]int{}}
	cfg := ServiceConfig{MaxRendezvous: 4, MaxQueued: 8, MaxPerRendezvousPoint: 2, QueueWait: 10 * time.Second}
	cfg.Now, cfg.Logger = h.clock.now, slog.New(slog.DiscardHandler)
	h.a = newAdmission(cfg, h.run)
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
		h.a.close()
	})
	return h
}

func (h *admitHarness) run(ctx context.Context, it *pendingIntro, claim func(peer.ID) bool) error {
	h.mu.Lock()
	ti := h.intros[it]
	h.mu.Unlock()
	if !claim(ti.rp) {
		return errBusy
	}
	if ti.hang {
		select {
		case <-h.release:
		case <-ctx.Done():
		}
		return errors.New("rendezvous circuit timed out")
	}
	h.mu.Lock()
	h.joined[ti.rp]++
	h.mu.Unlock()
	return nil
}

func (h *admitHarness) add(ip *introPoint, ti testIntro) {
	it := &pendingIntro{ip: ip, arrived: h.clock.now()}
	h.mu.Lock()
	h.intros[it] = ti
	h.mu.Unlock()
	h.a.add(context.Background(), it)
}

// until waits for cond on the admission's counts.
func (h *admitHarness) until(what string, cond func(IntroStats) bool) IntroStats {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := h.a.snapshot()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s: %+v", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func balanced(s IntroStats) bool {
	return s.Received == s.Refused+s.Dropped+s.Expired+s.Busy+s.Failed+s.Joined+uint64(s.Queued)+uint64(s.Running)
}

// An attacker floods one intro point with introductions that name
// rendezvous points that never answer. It holds at most
// MaxPerRendezvousPoint slots per point it names; what it queues beyond
// the intro point's queue is pushed out and counted, never lost without
// a count; and an honest client introducing itself through another intro
// point is served in turn, ahead of the attacker's queue.
func TestAdmissionUnderFlood(t *testing.T) {
	h := newAdmitHarness(t)
	evil, good := &introPoint{}, &introPoint{}
	dead := peer.ID("dead point")

	// 50 introductions naming one dead point: two hang, the rest are busy
	// or, arriving faster than they are found busy, pushed out.
	for range 50 {
		h.add(evil, testIntro{rp: dead, hang: true})
	}
	s := h.until("one dead point's introductions to settle", func(s IntroStats) bool {
		return s.Running == 2 && s.Queued == 0 && s.Busy+s.Dropped == 48
	})
	if !balanced(s) || s.Busy == 0 {
		t.Fatalf("after one dead point's flood: %+v", s)
	}
	dropped := s.Dropped
	// Two more dead points fill the other slots; twenty more queue at the
	// evil intro point, which keeps its 8 newest.
	h.add(evil, testIntro{rp: "dead 2", hang: true})
	h.add(evil, testIntro{rp: "dead 3", hang: true})
	h.until("every slot held", func(s IntroStats) bool { return s.Running == 4 })
	for range 20 {
		h.add(evil, testIntro{rp: "dead 4", hang: true})
	}
	h.add(good, testIntro{rp: "honest"})
	s = h.a.snapshot()
	if s.Queued != 9 || s.Dropped-dropped != 12 || !balanced(s) {
		t.Fatalf("with every slot held: %+v", s)
	}
	// The slots free up: the honest introduction is among the first two
	// taken (round-robin over the intro points).
	h.mu.Lock()
	for it := range h.intros {
		if it.ip == evil {
			h.intros[it] = testIntro{rp: h.intros[it].rp} // no longer hangs
		}
	}
	h.mu.Unlock()
	close(h.release)
	s = h.until("the queue to drain", func(s IntroStats) bool { return s.Queued == 0 && s.Running == 0 })
	if h.joined["honest"] != 1 {
		t.Fatalf("honest introduction not served: %+v", s)
	}
	if !balanced(s) || s.Received != 73 {
		t.Fatalf("counts do not add up: %+v", s)
	}
	t.Logf("%+v", s)
}

// Introductions that waited longer than QueueWait are counted as expired
// and not run; the service does not answer clients that gave up.
func TestAdmissionExpires(t *testing.T) {
	h := newAdmitHarness(t)
	ip := &introPoint{}
	for i := range 4 {
		h.add(ip, testIntro{rp: peer.ID(rune('a' + i)), hang: true})
	}
	h.until("every slot held", func(s IntroStats) bool { return s.Running == 4 })
	for range 3 {
		h.add(ip, testIntro{rp: "late"})
	}
	h.clock.add(11 * time.Second)
	close(h.release)
	s := h.until("the queue to drain", func(s IntroStats) bool { return s.Queued == 0 && s.Running == 0 })
	if s.Expired != 3 || h.joined["late"] != 0 || !balanced(s) {
		t.Fatalf("after the wait: %+v, late joined %d", s, h.joined["late"])
	}
}
