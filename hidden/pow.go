package hidden

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/obolnet/obol/descriptor"
)

// The service's proof-of-work defence (descriptor/hspow.go). Enabled, the
// service states an effort in its descriptors; it raises the effort when
// introductions were lost to load (dropped, expired or busy) since the
// last look, and lowers it when none were. Introductions are served by
// the effort they proved, highest first (admit.go), so that an attacker
// who wants its floods served must outspend the honest clients; a proof
// that does not hold counts as effort 0.
const (
	powStep = 16 // the first effort asked under load
	// maxServicePoWEffort bounds what the service asks: about a second
	// of hashing on a small machine.
	maxServicePoWEffort = 1 << 20
	// powAdjustEvery is how often the effort is looked at (and, if it
	// changed, the descriptors published again).
	powAdjustEvery = 2 * time.Minute
)

type powState struct {
	enabled bool
	min     uint32

	mu     sync.Mutex // guards the fields below
	effort uint32
	seeds  [2][descriptor.PoWSeedLen]byte // current and previous
	lost   uint64                         // introductions lost at the last look
}

func newPoWState(cfg ServiceConfig) *powState {
	p := &powState{enabled: cfg.PoW, min: cfg.PoWMinEffort, effort: cfg.PoWMinEffort}
	rand.Read(p.seeds[0][:])
	return p
}

// params rotates the seed (the previous one stays valid) and returns
// what a new descriptor states; nothing if the defence is off.
func (p *powState) params() descriptor.PoWParams {
	if !p.enabled {
		return descriptor.PoWParams{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seeds[1] = p.seeds[0]
	rand.Read(p.seeds[0][:])
	return descriptor.PoWParams{Seed: p.seeds[0], Effort: p.effort}
}

// effortOf is the effort a client's proof shows, 0 if it shows none or
// does not hold for either seed.
func (p *powState) effortOf(w descriptor.PoW, id descriptor.HSAddress, cookie [descriptor.CookieLen]byte) uint32 {
	if !p.enabled || w.Effort == 0 {
		return 0
	}
	p.mu.Lock()
	seeds := p.seeds
	p.mu.Unlock()
	for _, s := range seeds {
		if w.Verify(s, id, cookie) == nil {
			return w.Effort
		}
	}
	return 0
}

// adjust looks at the introductions lost to load since the last look and
// doubles the effort if there were any, halves it otherwise (never below
// the configured minimum). It reports whether the effort changed.
func (p *powState) adjust(s IntroStats) bool {
	if !p.enabled {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	lost := s.Dropped + s.Expired + s.Busy
	was := p.effort
	if lost > p.lost {
		p.effort = min(max(2*p.effort, powStep), maxServicePoWEffort)
	} else if p.effort /= 2; p.effort < powStep {
		p.effort = 0
	}
	p.effort = max(p.effort, p.min)
	p.lost = lost
	return p.effort != was
}
