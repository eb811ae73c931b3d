package client

import (
	"slices"
	"sync"
	"time"
)

// buildTimer learns how long to wait for a circuit build from the builds
// it has seen: twice the 95th percentile of the recent build times, kept
// between a floor and a ceiling. Until it has seen enough builds, and
// after several builds in a row timed out (the network changed), it uses
// the initial timeout.
type buildTimer struct {
	initial, floor, ceiling time.Duration

	mu       sync.Mutex // guards the fields below
	samples  []time.Duration
	next     int // ring position of the next sample
	timeouts int // consecutive timeouts
	hist     buildHistogram
}

// Learning constants.
const (
	buildSamples       = 100 // recent builds remembered
	minBuildSamples    = 5   // builds seen before the timeout is learned
	resetAfterTimeouts = 3   // consecutive timeouts that forget what was learned
)

func newBuildTimer(initial, floor, ceiling time.Duration) *buildTimer {
	return &buildTimer{initial: initial, floor: floor, ceiling: ceiling}
}

// observe records a completed build.
func (b *buildTimer) observe(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timeouts = 0
	b.hist.observe(d)
	if len(b.samples) < buildSamples {
		b.samples = append(b.samples, d)
		return
	}
	b.samples[b.next] = d
	b.next = (b.next + 1) % buildSamples
}

// timedOut records a build that ran out of time.
func (b *buildTimer) timedOut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timeouts++
	b.hist.timedOut++
	if b.timeouts >= resetAfterTimeouts {
		b.samples, b.next, b.timeouts = nil, 0, 0
	}
}

// histogram returns the build times seen so far.
func (b *buildTimer) histogram() BuildTimes {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hist.snapshot()
}

// timeout is how long the next build may take.
func (b *buildTimer) timeout() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.samples) < minBuildSamples {
		return b.initial
	}
	s := slices.Clone(b.samples)
	slices.Sort(s)
	p95 := s[(len(s)*95+99)/100-1]
	return min(max(2*p95, b.floor), b.ceiling)
}
