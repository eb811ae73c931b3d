package obol

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/errkind"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/circuit/padding"
	"github.com/obolnet/obol/circuit/socks"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment/wallet"
)

// ClientConfig configures a Client. Bootstrap is required; every other
// field's zero value means its default.
type ClientConfig struct {
	// DataDir holds the relay cache and the guards, so that a restart
	// neither starts cold nor picks new guards; "" keeps them in memory.
	DataDir string
	// Bootstrap are relays to join the network through.
	Bootstrap []peer.AddrInfo
	// Pay, if set, pays the relays that charge; nil uses free relays only.
	Pay *PayConfig
	// Hops is the circuit length (default 3).
	Hops int
	// Prebuilt is how many exit circuits are kept ready (default 2;
	// negative for none, e.g. for a client that only offers a hidden
	// service).
	Prebuilt int
	// PriceLimit is the most one relay may charge; nil means any price.
	PriceLimit *client.PriceLimit
	// Sample is how many relays the client expects its first view to
	// hold: a smaller one is reported (default 200). Resample is the
	// longest wait between two rounds of the view's sync (default 10 min;
	// shorter when descriptors live less than 40 min). JoinTimeout bounds
	// joining and each round (default 60 s).
	Sample      int
	Resample    time.Duration
	JoinTimeout time.Duration
	// Listen are the client's libp2p listen addresses (default: loopback,
	// ephemeral ports).
	Listen []string
	// AllowSameSubnet lets a path hold relays of one /16: for local test
	// networks only, where every relay is on loopback.
	AllowSameSubnet bool
	// MinGuardAge is how long a relay must have been in the client's view
	// before it may be a guard (default client.DefaultMinGuardAge);
	// negative turns the rule off, for local test networks only, whose
	// relays are all new.
	MinGuardAge time.Duration
	// MinExitAge is how long a relay must have been in the client's view
	// before it may be an exit (default client.DefaultMinExitAge);
	// negative turns the rule off, for local test networks only.
	MinExitAge time.Duration
	// ReducedPadding asks relays for less link padding, and sends less:
	// for clients on metered links (specs/03-link.md, "Link padding").
	ReducedPadding bool
	// FrontPadding runs a FRONT padding machine on every exit circuit,
	// with its middle relay (padding.DefaultFront: at most 300 cells each
	// way, in the circuit's first seconds), so that the pages a client
	// loads are harder to tell apart by their cells: about twice the
	// cells of a page load (specs/12-padding.md).
	FrontPadding bool
	// ClientKeys are the client's keys for hidden services that admit
	// listed clients only (hidden.LoadClientKeys).
	ClientKeys []*ecdh.PrivateKey
	// Logger receives the client's logs (default: discard). Nothing that
	// links a request to a circuit is logged.
	Logger *slog.Logger
}

// PayConfig says how a client pays relays.
type PayConfig struct {
	// WalletDir is the wallet's directory (see OpenWallet). Required.
	WalletDir string
	// Mint is the mint's URL; needed the first time only.
	Mint string
	// Budget bounds what one circuit may cost, in msat (0: no bound).
	Budget uint64
	// SettleEvery is how often channels are settled (default 1 min).
	SettleEvery time.Duration
	// MintTransport, if set, carries the wallet's requests to the mint.
	// By default they go through circuits of the client's own, a fresh
	// isolation for every operation, so that the mint never sees the
	// client's address nor links two operations by their connection.
	MintTransport pay.MintTransport
	// DirectMintConnectionUnsafe makes the wallet reach the mint straight
	// from this host's address: the mint then learns who pays, and with
	// a relay's help which circuits. For local test networks only.
	DirectMintConnectionUnsafe bool
	// HTTPClient reaches the mint directly (with
	// DirectMintConnectionUnsafe; default http.DefaultClient), e.g. from
	// one of the host's addresses. Through circuits only its Timeout is
	// used.
	HTTPClient *http.Client
}

// Client defaults.
const (
	DefaultSample      = 200
	DefaultResample    = 10 * time.Minute
	DefaultJoinTimeout = 60 * time.Second
)

// Files of a client's data directory besides the relay cache: the guard
// sets of exit circuits, of hidden-service circuits and of the circuits
// that carry the wallet's requests to the mint.
const (
	GuardFile     = "guards.json"
	HSGuardFile   = "hs-guards.json"
	MintGuardFile = "mint-guards.json"
)

// Validate reports the first field that cannot work.
func (c *ClientConfig) Validate() error {
	switch {
	case len(c.Bootstrap) == 0:
		return errors.New("obol: client: no bootstrap peers")
	case c.Hops < 0 || c.Hops > 8:
		return fmt.Errorf("obol: client: Hops %d is not between 1 and 8", c.Hops)
	case c.Sample < 0 || c.Resample < 0 || c.JoinTimeout < 0:
		return errors.New("obol: client: negative Sample, Resample or JoinTimeout")
	case c.Pay != nil && c.Pay.WalletDir == "":
		return errors.New("obol: client: Pay without a WalletDir")
	case c.Pay != nil && c.Pay.Mint != "":
		if err := pay.CheckMintURL(c.Pay.Mint); err != nil {
			return fmt.Errorf("obol: client: %w", err)
		}
	}
	return nil
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.Sample == 0 {
		c.Sample = DefaultSample
	}
	if c.Resample == 0 {
		c.Resample = DefaultResample
	}
	if c.JoinTimeout == 0 {
		c.JoinTimeout = DefaultJoinTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Client dials through obol circuits and offers hidden services. Create
// it with NewClient, run it with Run; Dial and Listen may be called from
// any goroutine, before or while it runs.
type Client struct {
	cfg   ClientConfig
	ready chan struct{} // closed once Run has joined, or has failed to
	done  chan struct{} // closed when Run has returned

	// Set by Run before ready is closed, then read-only.
	joinErr  error
	node     *node.Client
	links    *link.Manager
	mgr      *client.CircuitManager
	hs       *hidden.Connector
	hn       hidden.Config
	payer    *pay.Payer                            // nil: free relays only
	mintMgr  *client.CircuitManager                // circuits to the mint; nil without a payer or with a transport of the embedder's
	mainMgr  atomic.Pointer[client.CircuitManager] // mgr, for the other managers' goroutines
	hnShared atomic.Pointer[hidden.Config]         // hn once shared, likewise

	mu        sync.Mutex // guards the fields below
	running   bool
	closed    bool // close has begun: no more listeners
	listeners []*hidden.Listener
}

// ErrClosed means the client's Run has returned (KindClosed).
var ErrClosed = errkind.New(errkind.Closed, "obol: client closed")

// NewClient checks cfg and returns a client. It does no I/O.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg.withDefaults(), ready: make(chan struct{}), done: make(chan struct{})}, nil
}

// Run joins the network, then keeps the view of relays fresh, keeps
// circuits prebuilt and settles payments until ctx ends. It returns an
// error if it could not join, else nil once every goroutine it started
// has ended and everything it opened is closed. A client runs once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("obol: client: Run called twice")
	}
	c.running = true
	c.mu.Unlock()
	defer close(c.done)
	var wg sync.WaitGroup
	fresh, stopFresh := context.WithCancel(ctx)
	defer stopFresh()
	if c.joinErr = c.join(ctx); c.joinErr == nil {
		// The view keeps growing while the wallet reaches the mint: on a
		// young network the first sync may find only a few relays.
		wg.Go(func() { c.node.KeepFresh(fresh, c.cfg.Resample, c.cfg.JoinTimeout) })
		c.joinErr = c.open(ctx)
	}
	if c.joinErr != nil {
		stopFresh()
		wg.Wait()
		close(c.ready)
		c.close()
		return c.joinErr
	}
	close(c.ready)
	wg.Go(func() { c.mgr.Run(ctx) })
	if c.payer != nil {
		wg.Go(func() { c.payer.Run(ctx) })
	}
	// The circuits to the mint outlive ctx until the wallet has settled
	// through them at shutdown (close).
	mintCtx, stopMint := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMint()
	var mint sync.WaitGroup
	if c.mintMgr != nil {
		mint.Go(func() { c.mintMgr.Run(mintCtx) })
	}
	<-ctx.Done()
	wg.Wait()
	c.closeWith(func() { stopMint(); mint.Wait() })
	return nil
}

// open opens the wallet and builds the circuit managers, once the client
// has joined.
func (c *Client) open(ctx context.Context) error {
	cfg, log := c.cfg, c.cfg.Logger
	var err error
	c.links = link.NewManager(c.node.Host(), link.Config{Logger: log, Padding: c.linkPadding()})
	c.links.Start()
	if cfg.Pay != nil {
		wc := pay.WalletConfig{Dir: cfg.Pay.WalletDir, Mint: cfg.Pay.Mint, Transport: cfg.Pay.MintTransport,
			DirectMintConnectionUnsafe: cfg.Pay.DirectMintConnectionUnsafe, HTTPClient: cfg.Pay.HTTPClient}
		if wc.Transport == nil && !wc.DirectMintConnectionUnsafe {
			if wc.Transport, err = c.mintTransport(); err != nil {
				return err
			}
		}
		pctx, cancel := context.WithTimeout(ctx, cfg.JoinTimeout)
		c.payer, err = pay.OpenPayer(pctx, pay.PayerConfig{Wallet: wc,
			Budget: cfg.Pay.Budget, SettleEvery: cfg.Pay.SettleEvery, Logger: log})
		cancel()
		if err != nil {
			return err
		}
		if c.payer.Balance() == 0 {
			log.Warn("the wallet is empty: paid relays will be left out; top it up with `obol wallet topup`")
		}
	}
	return c.circuits()
}

// mintTransport carries the wallet's requests to the mint through
// circuits of a manager of their own: one isolation per operation, paths
// through relays whose free allowance carries a few requests (a circuit
// to the mint funds nothing, or every funding would need another), and a
// .obol mint through the hidden-service client.
func (c *Client) mintTransport() (pay.MintTransport, error) {
	cfg := client.Config{Links: c.links, Directory: client.DirectoryFunc(c.node.Known), Hops: c.cfg.Hops, Prebuilt: -1,
		AllowSameSubnet: c.cfg.AllowSameSubnet, MinGuardAge: c.cfg.MinGuardAge, MinExitAge: c.cfg.MinExitAge, Logger: c.cfg.Logger,
		Usable: pay.MintUsable, Pay: pay.MintPay, PreferGuards: c.guards, CreateClock: c.node.CreateClock}
	if c.cfg.DataDir != "" {
		cfg.GuardFile = filepath.Join(c.cfg.DataDir, MintGuardFile)
	}
	var err error
	if c.mintMgr, err = client.NewCircuitManager(cfg); err != nil {
		return nil, err
	}
	return pay.CircuitTransport(c.mintMgr.DialConnected, func(ctx context.Context, network, addr string) (net.Conn, error) {
		// The hidden-service client pays its circuits from the wallet
		// this transport opens; it exists only once the wallet does.
		if c.hs == nil {
			return nil, errors.New("obol: a .obol mint is reached once the client has joined")
		}
		return c.hs.Dial(ctx, network, addr)
	}), nil
}

// join starts the host and takes the view from the bootstrap relays (a
// client does not join the DHT); a warm cache lets the client start when
// no source answers.
func (c *Client) join(ctx context.Context) error {
	var err error
	if c.node, err = node.OpenClient(node.ClientConfig{DataDir: c.cfg.DataDir, Bootstrap: c.cfg.Bootstrap,
		Listen: c.cfg.Listen, Logger: c.cfg.Logger}); err != nil {
		return err
	}
	if c.cfg.DataDir != "" {
		// A client that ran before takes its first view from its guards,
		// which its cache still holds, not from the bootstrap relays.
		// An unreadable file is reported when the manager reads it.
		saved, _ := client.SavedGuards(filepath.Join(c.cfg.DataDir, GuardFile))
		c.node.PreferSources(func() []peer.ID { return saved })
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.JoinTimeout)
	defer cancel()
	_, err = c.node.Sample(ctx, c.cfg.Sample)
	switch {
	case len(c.node.Known()) == 0:
		return fmt.Errorf("obol: %w", err)
	case err != nil:
		c.cfg.Logger.Warn("sampling found few relays; using those known", "err", err, "relays", len(c.node.Known()))
	}
	return nil
}

// circuits builds the exit-circuit manager and the hidden-service client.
func (c *Client) circuits() error {
	cfg := client.Config{Links: c.links, Directory: client.DirectoryFunc(c.node.Known), Hops: c.cfg.Hops, Prebuilt: c.cfg.Prebuilt,
		PriceLimit: c.cfg.PriceLimit, AllowSameSubnet: c.cfg.AllowSameSubnet, MinGuardAge: c.cfg.MinGuardAge, MinExitAge: c.cfg.MinExitAge, Logger: c.cfg.Logger,
		CreateClock: c.node.CreateClock}
	cfg.PreferGuards = c.guards
	if c.cfg.FrontPadding {
		front := padding.DefaultFront
		cfg.Front = &front
	}
	if c.cfg.DataDir != "" {
		cfg.GuardFile = filepath.Join(c.cfg.DataDir, GuardFile)
	}
	var hsPay func([]*descriptor.Relay) (client.PayConfig, error)
	var standby hidden.StandbyPayer
	if c.payer != nil {
		c.payer.Configure(&cfg)
		hsPay, standby = c.payer.Pay, c.payer.Standby()
	} else {
		// A relay that charges would pause, then tear down, circuits
		// that do not pay it.
		cfg.Usable = pay.Free
	}
	var err error
	if c.mgr, err = client.NewCircuitManager(cfg); err != nil {
		return err
	}
	c.hn = hidden.Config{Links: c.links, Directory: client.DirectoryFunc(c.node.Known), ClientKeys: c.cfg.ClientKeys, Logger: c.cfg.Logger,
		Pay: hsPay, Standby: standby, CreateClock: c.node.CreateClock}
	if c.payer != nil {
		// Hidden-service circuits start at the manager's guards and keep
		// to its price limit and payer: one guard set for every circuit.
		c.hn.Entry = c.mgr
	} else {
		// A node that pays nothing runs its hidden-service circuits on
		// the free allowances of relays that charge (a mint request, an
		// introduction), where its exit circuits take free relays only:
		// its hidden-service guards are kept apart, the exit circuits'
		// first where they qualify.
		c.hn.PreferGuards = c.guards
	}
	if c.cfg.DataDir != "" {
		c.hn.GuardFile = filepath.Join(c.cfg.DataDir, HSGuardFile)
	}
	c.hn = c.hn.Shared() // the client and the services share one vanguard set, as their GuardFile
	hn := c.hn
	c.hnShared.Store(&hn)
	c.mainMgr.Store(c.mgr)
	if c.payer != nil {
		c.payer.Watch(c.mgr)
	}
	// Its guards see the client anyway: they are its view's sources too.
	c.node.PreferSources(c.mgr.Guards)
	c.hs, err = hidden.NewConnector(c.hn)
	return err
}

// guards are the guards of the client's circuit managers so far: its
// exit circuits' (which its hidden-service circuits start at too, when it
// pays), its mint circuits' and, when it pays nothing, its
// hidden-service circuits'. Each manager takes them first when it fills its set,
// so that whichever chose first — the mint's at a first start, as the
// wallet reaches the mint while the payer opens — the other follows, and
// no circuit of the client shows it to a relay the others do not.
func (c *Client) guards() []peer.ID {
	var ids []peer.ID
	if m := c.mainMgr.Load(); m != nil {
		ids = m.Guards()
	}
	if m := c.mintMgr; m != nil {
		ids = append(ids, m.Guards()...)
	}
	if hn := c.hnShared.Load(); hn != nil && hn.Entry == nil {
		ids = append(ids, hn.Guards()...)
	}
	return ids
}

// close closes what open opened, last opened first.
func (c *Client) close() { c.closeWith(nil) }

// closeWith is close with stopMint, if set, called once the wallet has
// settled at shutdown: the wallet reaches the mint through the links and
// the hidden-service client, so they close after it.
func (c *Client) closeWith(stopMint func()) {
	log := c.cfg.Logger
	c.mu.Lock()
	ls := c.listeners
	c.listeners, c.closed = nil, true
	c.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	if c.payer != nil {
		if err := c.payer.Close(); err != nil {
			log.Warn("closing the wallet", "err", err)
		}
	}
	if stopMint != nil {
		stopMint()
	}
	if c.hs != nil {
		c.hs.Close()
	}
	if c.links != nil {
		c.links.Close()
	}
	if c.node != nil {
		if err := c.node.Close(); err != nil {
			log.Warn("closing the client", "err", err)
		}
	}
}

// await waits until Run has joined. A client that failed to join is
// closed: Run has returned.
func (c *Client) await(ctx context.Context) error {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return errkind.Wrap(errkind.Timeout, fmt.Errorf("obol: waiting for the client to join: %w", ctx.Err()))
	}
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	return errkind.Wrap(errkind.Closed, c.joinErr)
}

// Dial connects to address ("host:port") through a circuit. A .obol host
// (descriptor.IsHSHost: any case, trailing dots, subdomains) is reached
// as a hidden service through a rendezvous point and never leaves the
// network through an exit; any other host is resolved by an exit, never
// locally. Streams isolated with client.WithIsolation(ctx, key) never
// share a circuit with streams of another key. network is "tcp", "tcp4"
// or "tcp6".
//
// Errors, Dial's and those of the connection's first reads and writes,
// carry a kind that tells the caller what to do (KindOf): retry, try
// another path, give up because the destination refused or was not
// found, and so on.
func (c *Client) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if err := c.await(ctx); err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, errkind.Wrap(errkind.Malformed, fmt.Errorf("obol: dial: %w", err))
	}
	if descriptor.IsHSHost(host) {
		return c.hs.Dial(ctx, network, address)
	}
	return c.mgr.Dial(ctx, network, address)
}

// Listen offers a hidden service whose identity is key (see
// hidden.LoadKey): its address is the listener's Addr, "<name>.obol".
// It returns once the service's descriptor is published. The listener
// closes when Run returns, if not before.
func (c *Client) Listen(ctx context.Context, key ed25519.PrivateKey) (net.Listener, error) {
	return c.ListenService(ctx, ServiceConfig{Key: key})
}

// ServiceConfig is a hidden service's identity and defences.
type ServiceConfig struct {
	// Key is the service's identity (hidden.LoadKey). Required.
	Key ed25519.PrivateKey
	// AuthorizedClients, if any, are the X25519 public keys of the only
	// clients that can read the service's introduction points
	// (hidden.LoadAuthorizedClients).
	AuthorizedClients [][32]byte
	// PoW asks clients for a proof of work when introductions are lost
	// to load.
	PoW bool
}

// ListenService is Listen with the service's defences.
func (c *Client) ListenService(ctx context.Context, sc ServiceConfig) (net.Listener, error) {
	if err := c.await(ctx); err != nil {
		return nil, err
	}
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Config: c.hn, Key: sc.Key, AuthorizedClients: sc.AuthorizedClients, PoW: sc.PoW})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		l.Close()
		return nil, ErrClosed
	}
	c.listeners = append(c.listeners, l)
	return l, nil
}

// DialStream implements socks.Dialer, for a SOCKS server in front of the
// client: as Dial, with the request's isolation key, and errors that
// choose the SOCKS reply.
func (c *Client) DialStream(ctx context.Context, req socks.Request) (net.Conn, error) {
	if err := c.await(ctx); err != nil {
		return nil, err
	}
	return hidden.Route(c.hs, c.mgr).DialStream(ctx, req)
}

// Joined waits until Run has joined the network and returns nil, or
// returns why it could not join, or ctx's error.
func (c *Client) Joined(ctx context.Context) error { return c.await(ctx) }

// Known returns the relays the client knows and chooses paths from, each
// verified; nil before Run has joined.
func (c *Client) Known() []*descriptor.Relay {
	if !c.isReady() || c.joinErr != nil {
		return nil
	}
	return c.node.Known()
}

// Channels is how many links to relays are open.
func (c *Client) Channels() int {
	if !c.isReady() || c.joinErr != nil {
		return 0
	}
	return c.links.Channels()
}

// Spent is what the client's circuits have paid, in msat; Reclaimed what
// settled channels brought back.
func (c *Client) Spent() uint64 {
	if !c.isReady() || c.payer == nil {
		return 0
	}
	return c.payer.Spent()
}

// Reclaimed is what settled channels brought back, in msat.
func (c *Client) Reclaimed() uint64 {
	if !c.isReady() || c.payer == nil {
		return 0
	}
	return c.payer.Reclaimed()
}

func (c *Client) isReady() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

// Wallet is the wallet that pays relays, once Run has joined; nil for a
// client that pays none.
func (c *Client) Wallet() *wallet.Wallet {
	select {
	case <-c.ready:
		if c.payer != nil {
			return c.payer.Wallet()
		}
	default:
	}
	return nil
}

// Circuits is the circuit manager, once Run has joined (nil before): its
// guards, circuits and spending, for status displays.
func (c *Client) Circuits() *client.CircuitManager {
	select {
	case <-c.ready:
		return c.mgr
	default:
		return nil
	}
}

// linkPadding is the client's link padding configuration.
func (c *Client) linkPadding() link.PaddingConfig {
	if c.cfg.ReducedPadding {
		return link.PaddingConfig{Mode: link.PaddingReduced}
	}
	return link.PaddingConfig{}
}
