package client

import (
	"slices"
	"testing"
	"time"
)

func TestBuildTimesHistogram(t *testing.T) {
	b := newBuildTimer(10*time.Second, time.Second, time.Minute)
	if got := b.histogram(); got.Count != 0 || len(got.Counts) != len(BuildTimeBuckets)+1 {
		t.Fatalf("empty histogram %+v", got)
	}
	for _, d := range []time.Duration{time.Millisecond, 25 * time.Millisecond, 26 * time.Millisecond, 300 * time.Millisecond, time.Minute} {
		b.observe(d)
	}
	b.timedOut()
	got := b.histogram()
	want := make([]uint64, len(BuildTimeBuckets)+1)
	want[0], want[1], want[4], want[len(want)-1] = 2, 1, 1, 1 // ≤25ms twice, ≤50ms, ≤400ms, above all
	if !slices.Equal(got.Counts, want) {
		t.Fatalf("counts %v, want %v", got.Counts, want)
	}
	if got.Count != 5 || got.Sum != time.Minute+352*time.Millisecond || got.TimedOut != 1 {
		t.Fatalf("count %d, sum %v, timed out %d", got.Count, got.Sum, got.TimedOut)
	}
	got.Counts[0] = 99 // a copy: the timer's figures stay
	if b.histogram().Counts[0] != 2 {
		t.Fatal("the histogram shares its counts with the caller")
	}
}
