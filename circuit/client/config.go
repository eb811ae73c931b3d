package client

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"

	"github.com/obolnet/obol/circuit/padding"
)

// Config configures a CircuitManager. The zero value of every field but
// Links and Directory means its default.
type Config struct {
	// Links opens channels to first hops. Required; the caller starts and
	// closes it.
	Links *link.Manager
	// Directory is the descriptor cache paths are chosen from. Required.
	Directory Directory
	// Hops is the path length, 1 to 8 (default 3).
	Hops int
	// PriceLimit is the most one relay may charge; nil means any price.
	PriceLimit *PriceLimit
	// GuardFile is where the guard set persists (a file in the client's
	// data directory); "" keeps it in memory only.
	GuardFile string
	// Guards is the size of the guard set (default 3).
	Guards int
	// PreferGuards, if set, names relays to take first when the guard set
	// is filled (another manager's guards, say), each if it may be a
	// guard of this manager: fewer relays then see the client.
	PreferGuards func() []peer.ID
	// GuardLifetime is how long a guard is kept at most (default 8
	// weeks; each guard's lifetime is shortened by up to a quarter at
	// random).
	GuardLifetime time.Duration
	// MinGuardAge is how long a relay must have been in the client's view
	// before it may become a guard (default 8 days; negative: no minimum,
	// for local test networks only, whose relays are all new). The relays
	// of a new client's first view count as old enough.
	MinGuardAge time.Duration
	// MinExitAge is how long a relay must have been in the client's view
	// before it may be an exit (default 3 days; negative: no minimum, for
	// local test networks only). The relays of a new client's first view
	// count as old enough.
	MinExitAge time.Duration
	// GuardReplaceAfter is how long a guard must be unreachable, or
	// missing from the cache, before it is replaced (default 3 days).
	GuardReplaceAfter time.Duration
	// Prebuilt is how many unused circuits are kept ready (default 2;
	// negative for none).
	Prebuilt int
	// PrebuildPorts are the ports prebuilt circuits' exits must accept
	// (default 80 and 443), taken in turn.
	PrebuildPorts []uint16
	// MaxDirtiness is how long after its first stream a circuit takes new
	// streams of the same isolation key (default and at most 10 min).
	MaxDirtiness time.Duration
	// IdleTimeout closes a used circuit that has carried no stream for
	// this long, and a prebuilt one never used for ten times as long
	// (default 5 min).
	IdleTimeout time.Duration
	// BuildTimeout is the build timeout until enough builds have been
	// seen to learn one (default 10 s); MinBuildTimeout and
	// MaxBuildTimeout bound the learned one (default 1 s and 60 s).
	BuildTimeout, MinBuildTimeout, MaxBuildTimeout time.Duration
	// BuildAttempts is how many different paths a request tries before it
	// fails (default 3).
	BuildAttempts int
	// MaxWeight caps the bandwidth, in bytes per second, that counts for
	// one relay in path selection, so that no relay's claim dominates
	// (default 100 MB/s).
	MaxWeight uint64
	// Usable, if set, leaves out of every path the relays for which it
	// returns false: paid relays whose mint the client's wallet does not
	// use, say.
	Usable func(r *descriptor.Relay) bool
	// Pay, if set, pays the relays of every circuit the manager builds;
	// nil builds unpaid circuits. It is called with a chosen path's
	// relays, first hop first, before the build, and says how to pay
	// them; if it fails (ErrUnaffordable, say) the build tries another
	// path. Once a circuit is built its Payments run until it closes; if
	// they fail, the circuit is closed.
	Pay func(path []*descriptor.Relay) (PayConfig, error)
	// AllowSameSubnet lifts the rule that relays of a path be in different
	// IPv4 /16 and IPv6 /32 networks. For local test networks only, where
	// every relay is on loopback.
	AllowSameSubnet bool
	// Tick is the period of housekeeping: expiry and prebuilding
	// (default 1 s).
	Tick time.Duration
	// Logger receives debug records; never destinations, isolation keys
	// or which circuit serves which request. Default: discard.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// CreateClock is the time every create carries to the relays, which
	// refuse one more than 5 minutes from their clock (default time.Now).
	// A client sets it by its view's sources (view.Syncer.ClockOffset),
	// so that a clock that is off does not tell its circuits apart.
	CreateClock func() time.Time
	// Front, if set, runs a FRONT padding machine with the middle hop of
	// every circuit the manager builds (specs/12-padding.md, §4.2): a
	// defence against website fingerprinting at the stated budget,
	// paid like data at paid relays.
	Front *padding.FrontConfig
}

// Defaults.
const (
	DefaultHops              = 3
	DefaultGuards            = 3
	DefaultGuardLifetime     = 8 * 7 * 24 * time.Hour
	DefaultGuardReplaceAfter = 3 * 24 * time.Hour
	DefaultMinGuardAge       = 8 * 24 * time.Hour
	DefaultMinExitAge        = 3 * 24 * time.Hour
	DefaultPrebuilt          = 2
	MaxDirtiness             = 10 * time.Minute
	DefaultIdleTimeout       = 5 * time.Minute
	DefaultBuildTimeout      = 10 * time.Second
	DefaultMinBuildTimeout   = time.Second
	DefaultMaxBuildTimeout   = time.Minute
	DefaultBuildAttempts     = 3
	DefaultMaxWeight         = 100_000_000
	DefaultTick              = time.Second
	maxGuards                = 8
)

// DefaultPrebuildPorts are the ports prebuilt circuits serve by default.
var DefaultPrebuildPorts = []uint16{80, 443}

// Validate reports the first field that cannot work.
func (c *Config) Validate() error {
	if c.Front != nil {
		if err := c.Front.Validate(); err != nil {
			return fmt.Errorf("client: config: %w", err)
		}
	}
	switch {
	case c.Links == nil:
		return errors.New("client: config: Links is required")
	case c.Directory == nil:
		return errors.New("client: config: Directory is required")
	case c.Hops < 0 || c.Hops > circuit.MaxHops:
		return fmt.Errorf("client: config: Hops %d is not between 1 and %d", c.Hops, circuit.MaxHops)
	case c.Guards < 0 || c.Guards > maxGuards:
		return fmt.Errorf("client: config: Guards %d is not between 1 and %d", c.Guards, maxGuards)
	case c.MaxDirtiness < 0 || c.MaxDirtiness > MaxDirtiness:
		return fmt.Errorf("client: config: MaxDirtiness %v is not between 0 and %v", c.MaxDirtiness, MaxDirtiness)
	case c.GuardLifetime < 0, c.GuardReplaceAfter < 0, c.IdleTimeout < 0, c.BuildTimeout < 0,
		c.MinBuildTimeout < 0, c.MaxBuildTimeout < 0, c.Tick < 0:
		return errors.New("client: config: negative duration")
	case c.BuildAttempts < 0:
		return errors.New("client: config: negative BuildAttempts")
	case c.MinBuildTimeout > 0 && c.MaxBuildTimeout > 0 && c.MinBuildTimeout > c.MaxBuildTimeout:
		return errors.New("client: config: MinBuildTimeout above MaxBuildTimeout")
	}
	for _, p := range c.PrebuildPorts {
		if p == 0 {
			return errors.New("client: config: prebuild port 0")
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Hops == 0 {
		c.Hops = DefaultHops
	}
	if c.Guards == 0 {
		c.Guards = DefaultGuards
	}
	def(&c.GuardLifetime, DefaultGuardLifetime)
	def(&c.GuardReplaceAfter, DefaultGuardReplaceAfter)
	def(&c.MinGuardAge, DefaultMinGuardAge)
	def(&c.MinExitAge, DefaultMinExitAge)
	switch {
	case c.Prebuilt == 0:
		c.Prebuilt = DefaultPrebuilt
	case c.Prebuilt < 0:
		c.Prebuilt = 0
	}
	if len(c.PrebuildPorts) == 0 {
		c.PrebuildPorts = DefaultPrebuildPorts
	}
	def(&c.MaxDirtiness, MaxDirtiness)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.BuildTimeout, DefaultBuildTimeout)
	def(&c.MinBuildTimeout, DefaultMinBuildTimeout)
	def(&c.MaxBuildTimeout, DefaultMaxBuildTimeout)
	def(&c.Tick, DefaultTick)
	if c.BuildAttempts == 0 {
		c.BuildAttempts = DefaultBuildAttempts
	}
	if c.MaxWeight == 0 {
		c.MaxWeight = DefaultMaxWeight
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CreateClock == nil {
		c.CreateClock = time.Now
	}
	return c
}
