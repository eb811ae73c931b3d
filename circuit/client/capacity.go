package client

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Capacity observed on the client's own circuits (specs/10-client.md
// §3.5). A circuit's download rate during its bursts of DATA is a sample
// of what each of its relays delivers to one circuit. The client keeps,
// per relay, the mean of the samples of the circuits it was in, and the
// mean over all circuits. A relay whose mean is below half the network's,
// over enough samples, has its weight scaled down by mean/(network/2): a
// relay that claims much and delivers little loses the share its claim
// bought. A relay delivering well is never scaled up: samples are the
// speed of the slowest hop, and claims are already capped (weigh).

// rxMeter measures a circuit's DATA from the exit: bytes, and the time
// spent in bursts (gaps longer than burstGap are idle, not slowness).
type rxMeter struct {
	bytes  uint64
	active time.Duration
	last   time.Time
}

const burstGap = 250 * time.Millisecond

func (m *rxMeter) add(n int, now time.Time) {
	if !m.last.IsZero() && now.Sub(m.last) < burstGap {
		m.active += now.Sub(m.last)
	}
	m.bytes += uint64(n)
	m.last = now
}

// delivered is what the exit sent on the circuit, and over how long.
func (c *Circuit) delivered() (bytes uint64, active time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rx.bytes, c.rx.active
}

// Capacity parameters.
const (
	bulkMin       = 1 << 20 // bytes a circuit must carry to be a sample
	minSamples    = 8       // samples of a relay before it is judged
	sampleMemory  = 32      // the mean follows about this many recent samples
	minCapFactor  = 1.0 / 64
	slowThreshold = 0.5 // below this fraction of the network's mean, a relay is slow
)

// runningMean is a mean over about sampleMemory recent samples.
type runningMean struct {
	n    int
	mean float64
}

func (r *runningMean) add(x float64) {
	r.n = min(r.n+1, sampleMemory)
	r.mean += (x - r.mean) / float64(r.n)
}

// capacityTracker holds the samples. Its methods are safe for concurrent
// use.
type capacityTracker struct {
	mu     sync.Mutex // guards the fields below
	relays map[peer.ID]*runningMean
	all    runningMean
}

func newCapacityTracker() *capacityTracker {
	return &capacityTracker{relays: map[peer.ID]*runningMean{}}
}

// observe records a circuit through path that carried bytes in active
// time; a circuit that carried less than bulkMin says nothing.
func (t *capacityTracker) observe(path []peer.ID, bytes uint64, active time.Duration) {
	if bytes < bulkMin || active <= 0 {
		return
	}
	rate := float64(bytes) / active.Seconds()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.all.add(rate)
	for _, id := range path {
		r := t.relays[id]
		if r == nil {
			r = &runningMean{}
			t.relays[id] = r
		}
		r.add(rate)
	}
}

// factor is what relay id's capped weight is multiplied by: 1 unless
// the relay has been sampled enough and delivers less than slowThreshold
// of the network's mean.
func (t *capacityTracker) factor(id peer.ID) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.relays[id]
	if r == nil || r.n < minSamples || t.all.mean <= 0 {
		return 1
	}
	return max(min(1, r.mean/(slowThreshold*t.all.mean)), minCapFactor)
}
