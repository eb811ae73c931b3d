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
	// CreateClock is the time circuits' creates carry, as
	// client.Config.CreateClock (default time.Now).
	CreateClock func() time.Time
	Logger      *slog.Logger // default: discard
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

	// Entry, if set, is the node's circuit manager (*client.CircuitManager
	// is one): the first hop of every hidden-service circuit is then one
	// of its guards, as Tor's vanguards take the entry guards as their
	// first layer, so that a node shows the same guards whatever its
	// circuits are for; and a relay it does not admit (a price over its
	// limit, or one its payer cannot pay) is never chosen here, nor paid
	// as a last hop chosen by the other side (an intro point of a
	// descriptor). This package then keeps only the vanguards, in
	// GuardFile, and GuardFile and PreferGuards serve nothing else.
	Entry Entry

	// ClientKeys are the client's authorization keys, tried on the
	// descriptor of a service that admits listed clients only
	// (LoadClientKeys).
	ClientKeys []*ecdh.PrivateKey

	// NoSetupPadding turns off the padding machine that makes the setup
	// of the client's introduction and rendezvous circuits look like an
	// exit circuit's (specs/12-padding.md); for measurements.
	NoSetupPadding bool

	guards *guardSet // shared by the copies of one Config's owner
	// lastUnpaid marks a Config whose Pay leaves a circuit's last hop
	// unpaid (forRendezvous): a relay Entry does not admit may then be a
	// last hop the other side chose.
	lastUnpaid bool
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

// createTime is the time a circuit's create carries.
func (n *Config) createTime() time.Time {
	if n.CreateClock == nil {
		return time.Now()
	}
	return n.CreateClock()
}

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

// Entry is what hidden-service circuits take from the node's circuit
// manager (Config.Entry); *client.CircuitManager implements it.
type Entry interface {
	// EntryGuards are the guards a circuit may start at now, most
	// preferred first.
	EntryGuards() []client.Hop
	// Guards are the guard set, most preferred first, as it stands (it
	// chooses nothing).
	Guards() []peer.ID
	// GuardReached records whether a link to a guard came up.
	GuardReached(id peer.ID, ok bool)
	// GuardBuilt counts a circuit build through a guard in its path
	// bias: only for circuits whose every relay the node chose.
	GuardBuilt(id peer.ID, ok bool)
	// Admits reports whether the node's paths may hold relay r.
	Admits(r *descriptor.Relay) bool
}

// Errors that tell a caller what to do.
var (
	// ErrNotAdmitted: a relay the other side chose (an intro point) is
	// one the node's circuit manager does not admit: it charges over the
	// price limit, or the payer cannot pay it.
	ErrNotAdmitted = errors.New("hidden: relay over the price limit or not payable")
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
