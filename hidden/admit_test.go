package hidden

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
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
	return s.Received == s.Refused+s.Dropped+s.Expired+s.Busy+s.Failed+s.Joined+s.Preempted+uint64(s.Queued)+uint64(s.Running)
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

// A flood without proof of work fills an intro point's queue while every
// slot is held; an introduction that proved an effort pushes out a
// flooded one, and is the first served when a slot frees, ahead of the
// older flood. A newcomer with no more effort than any queued is the one
// dropped.
func TestAdmissionByEffort(t *testing.T) {
	h := newAdmitHarness(t)
	ip := &introPoint{}
	var order []peer.ID
	var orderMu sync.Mutex
	run := h.a.run
	h.a.run = func(ctx context.Context, it *pendingIntro, claim func(peer.ID) bool) error {
		h.mu.Lock()
		rp := h.intros[it].rp
		h.mu.Unlock()
		orderMu.Lock()
		order = append(order, rp)
		orderMu.Unlock()
		return run(ctx, it, claim)
	}
	for i := range 4 {
		h.add(ip, testIntro{rp: peer.ID(rune('a' + i)), hang: true})
	}
	h.until("every slot held", func(s IntroStats) bool { return s.Running == 4 })
	for range 8 {
		h.add(ip, testIntro{rp: "flood"})
	}
	h.add(ip, testIntro{rp: "flood late"})
	s := h.a.snapshot()
	if s.Queued != 8 || s.Dropped != 1 {
		t.Fatalf("a ninth introduction of no effort: %+v", s)
	}
	it := &pendingIntro{ip: ip, arrived: h.clock.now(), effort: 50}
	h.mu.Lock()
	h.intros[it] = testIntro{rp: "worker"}
	h.mu.Unlock()
	h.a.add(context.Background(), it)
	// Every slot is held by an introduction of no effort: the one with
	// effort takes one of them at once, without waiting for it to time
	// out; then the queue is served through that slot, one introduction
	// after another.
	s = h.until("the queue to be served through the preempted slot", func(s IntroStats) bool {
		return s.Preempted == 1 && s.Queued == 0 && s.Running == 3
	})
	if s.Dropped != 2 || s.Proved != 1 || !balanced(s) {
		t.Fatalf("an introduction with effort: %+v", s)
	}
	close(h.release)
	s = h.until("the queue to drain", func(s IntroStats) bool { return s.Queued == 0 && s.Running == 0 })
	orderMu.Lock()
	defer orderMu.Unlock()
	queued := slices.DeleteFunc(slices.Clone(order), func(rp peer.ID) bool { return len(rp) == 1 }) // not the four held
	if len(queued) != 8 || queued[0] != "worker" {
		t.Fatalf("order of service: %q", queued)
	}
	if h.joined["worker"] != 1 || h.joined["flood late"] != 0 || s.Preempted != 1 || !balanced(s) {
		t.Fatalf("%+v, joined %v", s, h.joined)
	}
}

// The effort asked doubles while introductions that proved at least the
// effort asked are lost to load, holds while only those that proved less
// are, falls back when none are, and stays within its bounds.
func TestPoWEffortAdjusts(t *testing.T) {
	p := newPoWState(ServiceConfig{PoW: true})
	if p.adjust(lostSince{}) || p.params().Effort != 0 {
		t.Fatal("effort asked without load")
	}
	// A flood that proves the effort asked (or more) drives it up.
	for _, w := range []uint32{powStep, 2 * powStep, 4 * powStep} {
		if !p.adjust(lostSince{n: 10, maxEffort: p.asked()}) || p.params().Effort != w {
			t.Fatalf("under load: effort %d, want %d", p.params().Effort, w)
		}
	}
	// One that proves less leaves it where it is: the price works.
	for range 10 {
		if p.adjust(lostSince{n: 1000, maxEffort: p.asked() - 1}) || p.asked() != 4*powStep {
			t.Fatalf("a flood below the price moved the effort to %d", p.asked())
		}
	}
	for range 40 {
		p.adjust(lostSince{n: 1, maxEffort: maxServicePoWEffort})
	}
	if e := p.params().Effort; e != maxServicePoWEffort {
		t.Fatalf("effort %d under long load", e)
	}
	for range 40 {
		p.adjust(lostSince{})
	}
	if e := p.params().Effort; e != 0 {
		t.Fatalf("effort %d after the load", e)
	}
	floor := newPoWState(ServiceConfig{PoW: true, PoWMinEffort: 100})
	floor.adjust(lostSince{})
	if e := floor.params().Effort; e != 100 {
		t.Fatalf("effort %d below the minimum 100", e)
	}
	if off := newPoWState(ServiceConfig{}); off.adjust(lostSince{n: 5}) || off.params() != (descriptor.PoWParams{}) {
		t.Fatal("a service without the defence asks for work")
	}
}

// The service's look at its losses: a flood without work against a
// service asking none raises the effort once, and then, while the flood
// still proves nothing, holds it; a flood that pays the new price raises
// it again.
func TestPoWFloodWithoutWorkRaisesOnce(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cfg := ServiceConfig{PoW: true, MaxRendezvous: 1, MaxQueued: 2, QueueWait: time.Minute, MaxPerRendezvousPoint: 4}
	cfg.Now, cfg.Logger = func() time.Time { return now }, slog.New(slog.DiscardHandler)
	block := make(chan struct{})
	a := newAdmission(cfg, func(ctx context.Context, _ *pendingIntro, _ func(peer.ID) bool) error {
		<-block // the flood's rendezvous points never answer
		return errors.New("rendezvous timed out")
	})
	defer a.close()
	defer close(block)
	p := newPoWState(cfg)
	ip := &introPoint{}
	flood := func(effort uint32, n int) {
		for range n {
			a.add(context.Background(), &pendingIntro{ip: ip, effort: effort, arrived: now})
		}
	}
	flood(0, 10) // one runs, two wait, seven are dropped
	if !p.adjust(a.takeLost()) || p.asked() != powStep {
		t.Fatalf("a flood without work: effort %d, want %d", p.asked(), powStep)
	}
	for range 5 {
		flood(0, 10)
		if p.adjust(a.takeLost()) || p.asked() != powStep {
			t.Fatalf("a flood still without work moved the effort to %d", p.asked())
		}
	}
	flood(powStep, 10)
	if !p.adjust(a.takeLost()) || p.asked() != 2*powStep {
		t.Fatalf("a flood paying the price: effort %d, want %d", p.asked(), 2*powStep)
	}
}

// A proof counts for the current and the previous seed only, and only
// for the cookie it was made for. A proof of effort E holds by chance for
// another cookie or seed with probability 1/E, so the effort is high
// enough (2¹⁶, a few hundred milliseconds to solve) that chance does not
// decide the test.
func TestPoWSeeds(t *testing.T) {
	const effort = 1 << 16
	p := newPoWState(ServiceConfig{PoW: true, PoWMinEffort: effort})
	id := descriptor.HSAddress{1}
	cookie := [descriptor.CookieLen]byte{2}
	old := p.params()
	w, err := descriptor.SolvePoW(rand.Reader, old.Seed, id, cookie, old.Effort, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.effortOf(w, id, cookie) != effort {
		t.Fatal("a valid proof not counted")
	}
	if p.effortOf(w, id, [descriptor.CookieLen]byte{3}) != 0 {
		t.Fatal("a proof counted for another cookie")
	}
	p.params()
	if p.effortOf(w, id, cookie) != effort {
		t.Fatal("a proof for the previous seed not counted")
	}
	p.params()
	if p.effortOf(w, id, cookie) != 0 {
		t.Fatal("a proof for a seed two publications old counted")
	}
}
