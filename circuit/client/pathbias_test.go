package client

import (
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/obolnet/obol/descriptor"
)

// biasRun sends circuits through a one-guard set: the guard destroys a
// fraction kill of the circuits and killStreams of the streams on those
// built; the rest of the network fails a fraction loss of the circuits
// and loss/4 of the streams. It returns the worst verdict reported and
// whether the guard was disabled.
func biasRun(t *testing.T, kill, killStreams, loss float64, circuits int, seed uint64) (biasVerdict, bool) {
	g := newGuardSet("", 1, testLifetime, testReplace, -1)
	r := fakeRelay(t, descriptor.RoleGuard, 1<<20, "10.1.0.1")
	rules := testRules(3)
	rnd := mrand.New(mrand.NewPCG(seed, seed))
	if _, err := g.refresh(rules.candidates([]*descriptor.Relay{r}, testNow), rules, rnd, testNow); err != nil {
		t.Fatal(err)
	}
	worst := biasFine
	for i := range circuits {
		now := testNow.Add(time.Duration(i) * time.Second)
		built := rnd.Float64() >= kill && rnd.Float64() >= loss
		if ev, worse := g.recordBias(r.PeerID, now, func(b *pathBias, p biasParams) { b.build(built, p) }); worse {
			worst = ev.verdict
		}
		if !built {
			continue
		}
		answered := rnd.Float64() >= killStreams && rnd.Float64() >= loss/4
		if ev, worse := g.recordBias(r.PeerID, now, func(b *pathBias, p biasParams) { b.stream(answered, p) }); worse {
			worst = ev.verdict
		}
	}
	return worst, len(g.IDs()) == 0
}

// A guard that destroys a fraction of its circuits is reported, and taken
// out of use once the fraction is large; an honest guard on a network
// that loses circuits fairly is never reported.
func TestPathBiasDetectsGuard(t *testing.T) {
	tests := []struct {
		kill, killStreams, loss float64
		want                    biasVerdict
		wantDisabled            bool
	}{
		{0, 0, 0, biasFine, false},
		{0, 0, 0.10, biasFine, false},
		{0, 0, 0.20, biasFine, false}, // lossy but fair
		{0.40, 0, 0.05, biasNotice, false},
		{0.50, 0, 0.05, biasWarn, false},
		{0.75, 0, 0.05, biasExtreme, true},
		{0.95, 0, 0, biasExtreme, true},
		{0, 0.25, 0.05, biasNotice, false}, // builds, then kills streams
		{0, 0.50, 0.05, biasExtreme, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("kill %.2f streams %.2f loss %.2f", tt.kill, tt.killStreams, tt.loss), func(t *testing.T) {
			for seed := range uint64(5) {
				v, disabled := biasRun(t, tt.kill, tt.killStreams, tt.loss, 3000, seed)
				if v != tt.want || disabled != tt.wantDisabled {
					t.Errorf("seed %d: verdict %d, disabled %v; want %d, %v", seed, v, disabled, tt.want, tt.wantDisabled)
				}
			}
		})
	}
}

// Counts are halved at the scale thresholds, so that a guard that turns
// hostile after a long honest record is still caught.
func TestPathBiasFollowsRecentBehaviour(t *testing.T) {
	var b pathBias
	for range 10_000 {
		b.build(true, defaultBias)
	}
	if b.Attempts >= defaultBias.scaleCircs {
		t.Fatalf("%v attempts kept, want fewer than %v", b.Attempts, defaultBias.scaleCircs)
	}
	n := 0
	for b.verdict(defaultBias) != biasExtreme {
		b.build(false, defaultBias)
		if n++; n > 1000 {
			t.Fatal("a guard failing every circuit after 10000 good ones is never disabled")
		}
	}
	t.Logf("disabled after %d failed circuits following 10000 good ones", n)
}
