package client

import "time"

// BuildTimeBuckets are the upper bounds of the build-time histogram
// (BuildTimes): from a build on one machine to one across continents.
var BuildTimeBuckets = []time.Duration{
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond,
	6400 * time.Millisecond, 12800 * time.Millisecond,
}

// BuildTimes is the histogram of how long a manager's circuit builds took,
// from the CREATE to the CREATED, since the manager started. It says
// nothing about which circuit or request a build served.
type BuildTimes struct {
	// Counts[i] is the number of builds that took at most
	// BuildTimeBuckets[i] and more than BuildTimeBuckets[i-1]; the last
	// element counts the slower ones.
	Counts   []uint64
	Count    uint64        // builds that completed
	Sum      time.Duration // their total time
	TimedOut uint64        // builds given up at the timeout
}

// buildHistogram accumulates BuildTimes. Its owner's lock guards it.
type buildHistogram struct {
	counts   []uint64 // len(BuildTimeBuckets)+1, once a build is seen
	count    uint64
	sum      time.Duration
	timedOut uint64
}

func (h *buildHistogram) observe(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint64, len(BuildTimeBuckets)+1)
	}
	i := 0
	for i < len(BuildTimeBuckets) && d > BuildTimeBuckets[i] {
		i++
	}
	h.counts[i]++
	h.count++
	h.sum += d
}

func (h *buildHistogram) snapshot() BuildTimes {
	counts := make([]uint64, len(BuildTimeBuckets)+1)
	copy(counts, h.counts)
	return BuildTimes{Counts: counts, Count: h.count, Sum: h.sum, TimedOut: h.timedOut}
}

// BuildTimes returns the histogram of the manager's build times.
func (m *CircuitManager) BuildTimes() BuildTimes { return m.timer.histogram() }
