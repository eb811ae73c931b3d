package hidden

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	yamux "github.com/libp2p/go-yamux/v5"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
)

// ServiceConfig configures a hidden service.
type ServiceConfig struct {
	Config
	// Key is the service's identity; its public half is the address.
	Key ed25519.PrivateKey
	// Intros is how many intro points the service keeps (default 3).
	Intros int
	// Lifetime is how long a descriptor is valid (default 3 h).
	Lifetime time.Duration
	// Republish is how often descriptors are stored again (default
	// Lifetime/3); they are also stored whenever the intro points change.
	Republish time.Duration
	// MaxRendezvous bounds the rendezvous under way at once (default 16).
	MaxRendezvous int
	// MaxQueued bounds the introductions waiting for a rendezvous slot,
	// per intro point (default 32); a newer one pushes out the oldest.
	MaxQueued int
	// QueueWait is how long an introduction may wait for a slot (default
	// 10 s; the client waits 30 s in all).
	QueueWait time.Duration
	// MaxPerRendezvousPoint bounds the rendezvous under way to one
	// rendezvous point (default 4), so that introductions naming a point
	// that never answers cannot hold every slot.
	MaxPerRendezvousPoint int
	// RendezvousTimeout bounds the circuit to a rendezvous point (default
	// 6 s).
	RendezvousTimeout time.Duration
	// AuthorizedClients, if any, are the X25519 public keys of the only
	// clients that can read the intro points (LoadAuthorizedClients; at
	// most descriptor.MaxAuthClients).
	AuthorizedClients [][32]byte
	// PoW turns on the proof-of-work defence (pow.go): the descriptor
	// states an effort, raised while introductions are lost to load, and
	// introductions are served by the effort they proved. PoWMinEffort is
	// the least effort asked (default 0: none until under load).
	PoW          bool
	PoWMinEffort uint32
	// PoWAdjustEvery is how often the service looks at its losses and
	// moves the effort it asks (default 2 min).
	PoWAdjustEvery time.Duration
}

func (c *ServiceConfig) validate() error {
	if err := c.Config.validate(); err != nil {
		return err
	}
	switch {
	case len(c.Key) != ed25519.PrivateKeySize:
		return errors.New("hidden: no service key")
	case c.Intros < 0 || c.Intros > descriptor.MaxIntros:
		return errors.New("hidden: intro point count out of range")
	case c.Lifetime < 0 || c.Lifetime > descriptor.MaxHSLifetime || c.Republish < 0:
		return errors.New("hidden: lifetime or republish interval out of range")
	case c.PoWMinEffort > maxServicePoWEffort:
		return errors.New("hidden: proof-of-work effort out of range")
	case len(c.AuthorizedClients) > descriptor.MaxAuthClients:
		return fmt.Errorf("hidden: more than %d authorized clients", descriptor.MaxAuthClients)
	case c.MaxRendezvous < 0 || c.MaxQueued < 0 || c.QueueWait < 0 || c.MaxPerRendezvousPoint < 0 || c.RendezvousTimeout < 0 || c.PoWAdjustEvery < 0:
		return errors.New("hidden: negative admission limit")
	}
	return nil
}

func (c ServiceConfig) withDefaults() ServiceConfig {
	c.Config = c.Config.withDefaults()
	if c.Intros == 0 {
		c.Intros = 3
	}
	if c.Lifetime == 0 {
		c.Lifetime = 3 * time.Hour
	}
	if c.Republish == 0 {
		c.Republish = c.Lifetime / 3
	}
	if c.MaxRendezvous == 0 {
		c.MaxRendezvous = 16
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = 32
	}
	if c.QueueWait == 0 {
		c.QueueWait = 10 * time.Second
	}
	if c.MaxPerRendezvousPoint == 0 {
		c.MaxPerRendezvousPoint = 4
	}
	if c.RendezvousTimeout == 0 {
		c.RendezvousTimeout = 6 * time.Second
	}
	if c.PoWAdjustEvery == 0 {
		c.PoWAdjustEvery = powAdjustEvery
	}
	return c
}

// LoadKey reads a service identity key (a 32-byte Ed25519 seed) from path,
// creating one with mode 0600 if the file does not exist. The same file
// gives the same address after a restart.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		seed := make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		if err := dht.WriteFileAtomic(path, seed, 0o600); err != nil {
			return nil, fmt.Errorf("hidden: write service key: %w", err)
		}
		b = seed
	} else if err != nil {
		return nil, fmt.Errorf("hidden: read service key: %w", err)
	}
	if len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("hidden: service key %s is not a %d-byte seed", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(b), nil
}

// AddressOf is the .obol address of a service key.
func AddressOf(k ed25519.PrivateKey) string {
	return descriptor.HSAddress(k.Public().(ed25519.PublicKey)).String()
}

// Listener is a running hidden service; its connections come from
// clients of the service. It keeps the intro points and the descriptors
// up until Close.
type Listener struct {
	cfg    ServiceConfig
	addr   descriptor.HSAddress
	accept chan *Conn
	runCtx context.Context // ends at Close
	cancel context.CancelFunc
	work   sync.WaitGroup // descriptor stores and client sessions
	done   chan struct{}
	lost   chan *introPoint
	adm    *admission // introductions waiting and rendezvous under way
	pow    *powState

	mu        sync.Mutex // guards the fields below
	intros    []*introPoint
	choosing  map[peer.ID]bool // relays of intro points being established
	sessions  map[*yamux.Session]struct{}
	steps     map[uint64]uint64 // last revision step by period number
	published int               // successful publications
	stored    int               // replicas stored
	closed    bool
}

// Listen starts the service: it establishes the intro points, publishes
// the descriptors of the current and the next period, and returns once at
// least one intro point is up and the current descriptor is stored. The
// service then runs until Close.
func Listen(ctx context.Context, cfg ServiceConfig) (*Listener, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l := &Listener{cfg: cfg, accept: make(chan *Conn, 64), done: make(chan struct{}),
		lost:     make(chan *introPoint, descriptor.MaxIntros),
		sessions: map[*yamux.Session]struct{}{}, steps: startSteps(cfg.Now(), cfg.Period)}
	l.adm, l.pow = newAdmission(cfg, l.rendezvous), newPoWState(cfg)
	copy(l.addr[:], cfg.Key.Public().(ed25519.PublicKey))
	runCtx, cancel := context.WithCancel(context.Background())
	l.runCtx, l.cancel = runCtx, cancel
	if err := l.start(ctx, runCtx); err != nil {
		cancel()
		l.shutdown()
		return nil, err
	}
	go l.run(runCtx)
	return l, nil
}

func (l *Listener) start(ctx, runCtx context.Context) error {
	var wg sync.WaitGroup
	for range l.cfg.Intros {
		wg.Add(1)
		go func() { defer wg.Done(); l.addIntro(ctx, runCtx) }()
	}
	wg.Wait()
	if len(l.currentIntros()) == 0 {
		return fmt.Errorf("hidden: no intro point could be established: %w", ErrNoRelays)
	}
	l.cfg.stock() // the guard set is chosen: standby channels can be funded before any introduction
	if err := l.publish(ctx); err != nil {
		return err
	}
	return nil
}

// Status is what a running service reports about itself.
type Status struct {
	Intros    []peer.ID // current intro points
	Published int       // descriptor publications that stored a current replica
	Stored    int       // descriptor replicas stored, of any period
	Intro     IntroStats
	PoWEffort uint32 // the proof-of-work effort the descriptors ask now
}

// Status returns the service's current intro points and publications.
func (l *Listener) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Status{Published: l.published, Stored: l.stored, Intro: l.adm.snapshot(), PoWEffort: l.pow.asked()}
	for _, ip := range l.intros {
		s.Intros = append(s.Intros, ip.relay.Peer.ID)
	}
	return s
}

// Addr is the service's address (port 0).
func (l *Listener) Addr() net.Addr { return Addr{Service: l.addr.String()} }

// Address is the service's .obol name.
func (l *Listener) Address() string { return l.addr.String() }

// Accept waits for the next connection from a client.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops the service: intro circuits and client sessions are closed
// and the descriptors are left to expire. It waits for its goroutines.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	<-l.done
	return nil
}

func (l *Listener) shutdown() {
	l.mu.Lock()
	l.closed = true
	intros, sessions := l.intros, l.sessions
	l.intros, l.sessions = nil, map[*yamux.Session]struct{}{}
	l.mu.Unlock()
	for _, ip := range intros {
		ip.c.Close()
	}
	for s := range sessions {
		s.Close()
	}
	l.adm.close() // every rendezvous under way has ended
	l.work.Wait()
	select {
	case <-l.done:
	default:
		close(l.done)
	}
}

// run replaces lost intro points and republishes until ctx ends.
func (l *Listener) run(ctx context.Context) {
	defer l.shutdown()
	t := time.NewTicker(l.cfg.Republish)
	defer t.Stop()
	pt := time.NewTicker(l.cfg.PoWAdjustEvery)
	defer pt.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ip := <-l.lost:
			if l.dropIntro(ip) {
				l.replace(ctx)
			}
		case <-t.C:
			l.publish(ctx)
		case <-pt.C:
			if l.pow.adjust(l.adm.takeLost()) {
				l.publish(ctx)
			}
		}
	}
}

// replace establishes intro points until there are enough again, then
// republishes.
func (l *Listener) replace(ctx context.Context) {
	for backoff := 100 * time.Millisecond; len(l.currentIntros()) < l.cfg.Intros; backoff = min(2*backoff, 30*time.Second) {
		if l.addIntro(ctx, ctx) {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
	l.cfg.Logger.Info("intro points replaced", "count", l.cfg.Intros)
	l.publish(ctx)
}

func (l *Listener) currentIntros() []*introPoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*introPoint(nil), l.intros...)
}

func (l *Listener) dropIntro(ip *introPoint) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, x := range l.intros {
		if x == ip {
			l.intros = append(l.intros[:i], l.intros[i+1:]...)
			return !l.closed
		}
	}
	return false
}
