package hidden

import (
	"crypto/ecdh"
	"errors"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
)

// Config is what the service and client sides need of obol: a link
// manager to build circuits on and the relays to choose paths from.
type Config struct {
	Links     *link.Manager
	Directory client.Directory // verified relay descriptors (e.g. *dht.Cache)
	// Period is the descriptor time period (default descriptor.DefaultPeriod).
	Period time.Duration
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default: discard
	// BuildTimeout bounds one circuit build (default 10 s).
	BuildTimeout time.Duration
	// Pay, if set, pays the relays of every circuit built: it is given
	// the path's descriptors (nil for a relay not in Directory, such as
	// a rendezvous point a client chose) and says how to pay them, as
	// client.Config.Pay does. Nil builds unpaid circuits, which relays
	// that charge carry only as far as their free allowance.
	Pay func(path []*descriptor.Relay) (client.PayConfig, error)
	// Standby, if set, pays a service's rendezvous circuits instead of
	// Pay, from channels funded in advance: a service then makes no mint
	// request in answer to an introduction. Clients do not use it.
	Standby StandbyPayer

	// GuardFile is where the first hops of hidden-service circuits
	// persist (a file in the data directory), so that a restart does not
	// choose new ones; "" keeps them in memory only.
	GuardFile string
	// PreferGuards, if set, names relays to take first as guards when the
	// set is filled (the node's exit circuits' guards), each if it is a
	// candidate and not a vanguard: fewer relays then see the node.
	PreferGuards func() []peer.ID

	// ClientKeys are the client's authorization keys, tried on the
	// descriptor of a service that admits listed clients only
	// (LoadClientKeys).
	ClientKeys []*ecdh.PrivateKey

	// NoSetupPadding turns off the padding machine that makes the setup
	// of the client's introduction and rendezvous circuits look like an
	// exit circuit's (specs/12-padding.md); for measurements.
	NoSetupPadding bool

	guards *guardSet // shared by the copies of one Config's owner
	// prefer, if set, marks the relays to take as guard and vanguard
	// where the set has some (forRendezvous: those with a standby
	// channel ready).
	prefer func(*descriptor.Relay) bool
}

func (n *Config) validate() error {
	switch {
	case n.Links == nil:
		return errors.New("hidden: no link manager")
	case n.Directory == nil:
		return errors.New("hidden: no relay directory")
	case n.Period != 0 && (n.Period < descriptor.MinPeriod || n.Period > descriptor.MaxPeriod):
		return errors.New("hidden: period out of range")
	}
	return nil
}

// Shared returns n with its defaults and its state made: the copies of
// the result given to NewConnector and Listen share one guard set, and so
// one GuardFile, as the hidden-service circuits of one node should.
// Copies of a Config not shared this way each keep a set of their own,
// and must not be given the same GuardFile.
func (n Config) Shared() Config { return n.withDefaults() }

func (n Config) withDefaults() Config {
	if n.Period == 0 {
		n.Period = descriptor.DefaultPeriod
	}
	if n.Now == nil {
		n.Now = time.Now
	}
	if n.Logger == nil {
		n.Logger = slog.New(slog.DiscardHandler)
	}
	if n.BuildTimeout == 0 {
		n.BuildTimeout = 10 * time.Second
	}
	if n.guards == nil {
		n.guards = &guardSet{file: n.GuardFile, logger: n.Logger, now: n.Now, prefer: n.PreferGuards}
	}
	return n
}

// Errors that tell a caller what to do.
var (
	// ErrNoRelays: the directory holds too few usable relays; wait for
	// sampling to fill it.
	ErrNoRelays = errors.New("hidden: not enough relays for a path")
	// ErrUnknownService: no descriptor for the address was found; the
	// address is wrong or the service is offline. Retrying later may help.
	ErrUnknownService = errors.New("hidden: no descriptor for this address (unknown service or offline)")
	// ErrUnreachable: the descriptor was found but no intro point took the
	// introduction, or the service never came to the rendezvous.
	ErrUnreachable = errors.New("hidden: service did not answer through any intro point")
	// ErrUnauthorized: the service admits listed clients only, and none
	// of the client's keys is listed. Ask its operator to list one.
	ErrUnauthorized = errors.New("hidden: service admits authorized clients only")
)
