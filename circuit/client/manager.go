package client

import (
	crand "crypto/rand"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/socks"
	"github.com/obolnet/obol/descriptor"
)

// CircuitManager keeps circuits for a client: it chooses paths from the
// descriptor cache through a persistent guard set, keeps circuits
// prebuilt so that a first request does not wait for a build, gives each
// isolation key circuits of its own (reused for at most MaxDirtiness),
// learns build timeouts, retries failed builds on other paths and closes
// idle circuits. It is the importable client (Dial) and the SOCKS server's
// Dialer (DialStream).
//
// A circuit's states:
//
//	building ──► clean (prebuilt) ──(first stream of key K)──► dirty for K
//	                │                                          │
//	                └─(never used for 10×IdleTimeout)─► closed ◄┴─(no stream for IdleTimeout,
//	                                                              or too old and unused)
//
// A dirty circuit takes new streams of its key until MaxDirtiness after
// its first; its open streams go on until they end.
type CircuitManager struct {
	cfg    Config
	rules  pathRules
	guards *guardSet
	timer  *buildTimer
	// capacity holds what the relays delivered on the client's circuits.
	capacity *capacityTracker

	rndMu sync.Mutex // guards rnd
	rnd   *rand.Rand

	// afterWeigh, if set (tests), runs in choosePath between its first
	// weighing of the candidates and its look at the guards' history.
	afterWeigh func()

	pickMu sync.Mutex // serialises path picks (pickPath)

	spent    atomic.Uint64  // msat paid by the circuits' payments
	payments sync.WaitGroup // circuits' payments and padding negotiations running

	candMu sync.Mutex // guards cands
	cands  map[*descriptor.Relay]*candidate

	mu           sync.Mutex // guards the fields below
	circs        []*managed
	pending      map[socks.IsolationKey]chan struct{} // on-demand builds in flight
	prebuilding  int
	nextPort     int             // index into PrebuildPorts
	building     map[peer.ID]int // exits of builds in flight
	failedRelays suspicion       // relays of failed paths, left out for a while
	retryAt      time.Time       // prebuilding waits after failures
	failures     int             // consecutive prebuild failures
	running      bool
	closed       bool
}

// managed is a circuit the manager keeps.
type managed struct {
	c     *Circuit
	path  []peer.ID
	exit  *descriptor.Relay
	built time.Time
	stale func() bool // PayConfig.Stale; nil: never

	// guarded by CircuitManager.mu
	dirty     bool
	iso       socks.IsolationKey
	firstUse  time.Time
	idleSince time.Time // when it was last seen without streams
}

// usable reports whether mc may take a new stream: it is open and can
// be paid.
func (mc *managed) usable() bool {
	return mc.c.Err() == nil && (mc.stale == nil || !mc.stale())
}

// ErrClosed means the manager has stopped: start a new one.
var ErrClosed = errors.New("client: manager closed")

// NewCircuitManager checks cfg, loads the guard set and returns a manager. It
// starts nothing; call Run.
func NewCircuitManager(cfg Config) (*CircuitManager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var seed [32]byte
	crand.Read(seed[:])
	capacity := newCapacityTracker()
	guards := newGuardSet(cfg.GuardFile, cfg.Guards, cfg.GuardLifetime, cfg.GuardReplaceAfter, cfg.MinGuardAge)
	guards.minExitAge, guards.prefer = cfg.MinExitAge, cfg.PreferGuards
	m := &CircuitManager{
		cfg:      cfg,
		capacity: capacity,
		rules: pathRules{hops: cfg.Hops, price: cfg.PriceLimit, allowSameSubnet: cfg.AllowSameSubnet,
			maxWeight: cfg.MaxWeight, usable: cfg.Usable, factor: capacity.factor, exitAge: guards.oldExit},
		guards:   guards,
		timer:    newBuildTimer(cfg.BuildTimeout, cfg.MinBuildTimeout, cfg.MaxBuildTimeout),
		rnd:      rand.New(rand.NewChaCha8(seed)),
		pending:  map[socks.IsolationKey]chan struct{}{},
		building: map[peer.ID]int{},
		cands:    map[*descriptor.Relay]*candidate{},
	}
	if err := m.guards.load(); err != nil {
		return nil, err
	}
	return m, nil
}

// Guards returns the guard set, most preferred first.
func (m *CircuitManager) Guards() []peer.ID { return m.guards.IDs() }

// Spent is what the manager's circuits have paid so far, in msat.
func (m *CircuitManager) Spent() uint64 { return m.spent.Load() }

// BuildTimeout is the timeout the next build gets.
func (m *CircuitManager) BuildTimeout() time.Duration { return m.timer.timeout() }

// CircuitInfo describes a circuit the manager keeps. It says nothing
// about which isolation key or request it serves.
type CircuitInfo struct {
	Hops    []peer.ID // first hop first
	Used    bool      // it has carried a stream
	Streams int       // open streams
	Age     time.Duration
}

// Circuits describes the open circuits.
func (m *CircuitManager) Circuits() []CircuitInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	var out []CircuitInfo
	for _, mc := range m.circs {
		if mc.c.Err() == nil {
			out = append(out, CircuitInfo{Hops: mc.path, Used: mc.dirty, Streams: mc.c.NumStreams(), Age: now.Sub(mc.built)})
		}
	}
	return out
}

// randomness draws from the manager's generator under its lock.
func (m *CircuitManager) randomness(f func(*rand.Rand)) {
	m.rndMu.Lock()
	defer m.rndMu.Unlock()
	f(m.rnd)
}

// candidates returns the directory's candidates now, reusing those made
// before: parsing every relay's addresses for every build would cost
// milliseconds with thousands of relays.
func (m *CircuitManager) candidates(now time.Time) []*candidate {
	relays := m.cfg.Directory.Relays()
	m.candMu.Lock()
	defer m.candMu.Unlock()
	if len(m.cands) > 2*len(relays)+64 {
		clear(m.cands) // forget descriptors that left the directory
	}
	return m.rules.candidatesFrom(relays, now, m.cands)
}
