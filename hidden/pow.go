package hidden

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/obolnet/obol/descriptor"
)

// The service's proof-of-work defence (descriptor/hspow.go). Enabled, the
// service states an effort in its descriptors. It raises the effort when
// it lost to load (dropped, expired or busy) an introduction that proved
// at least the effort asked: the price no longer keeps the load within
// what it serves. It holds the effort while only introductions that
// proved less are lost — the price works, and a flood without work does
// not drive it up for the clients that pay it — and lowers it when none
// are lost. This follows Tor's proposal 327, which raises the suggested
// effort only when requests above it are trimmed. Introductions are
// served by the effort they proved, highest first (admit.go), so that an
// attacker who wants its floods served must outspend the honest clients;
// a proof that does not hold counts as effort 0.
const (
	powStep = 16 // the first effort asked under load
	// maxServicePoWEffort bounds what the service asks: about a second
	// of hashing on a small machine.
	maxServicePoWEffort = 1 << 20
	// powAdjustEvery is how often the effort is looked at by default
	// (and, if it changed, the descriptors published again).
	powAdjustEvery = 2 * time.Minute
)

type powState struct {
	enabled bool
	min     uint32

	mu     sync.Mutex // guards the fields below
	effort uint32
	seeds  [2][descriptor.PoWSeedLen]byte // current and previous
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

// asked is the effort the service's descriptors state now; 0 with the
// defence off.
func (p *powState) asked() uint32 {
	if !p.enabled {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.effort
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

// adjust looks at the introductions lost to load since the last look:
// it doubles the effort if one of them proved at least the effort asked,
// keeps it if all proved less, and halves it if none was lost (never
// below the configured minimum). It reports whether the effort changed.
func (p *powState) adjust(lost lostSince) bool {
	if !p.enabled {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.effort
	switch {
	case lost.n > 0 && lost.maxEffort >= p.effort:
		p.effort = min(max(2*p.effort, powStep), maxServicePoWEffort)
	case lost.n > 0: // only what paid less than asked: the price holds
	default:
		if p.effort /= 2; p.effort < powStep {
			p.effort = 0
		}
	}
	p.effort = max(p.effort, p.min)
	return p.effort != was
}
