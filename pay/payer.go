package pay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/keyfile"
	"github.com/obolnet/obol/payment/wallet"
)

// Files of a wallet directory that pays circuits: the channels it opened,
// kept beside the ecash that funds them so that no remainder is lost with
// a client's cache.
const (
	ChannelDir      = "channels"
	ChannelSeedFile = "channels.seed"
)

// PayerConfig configures a Payer.
type PayerConfig struct {
	Wallet WalletConfig
	// Budget bounds what one circuit may cost, in msat (0: no bound).
	Budget uint64
	// SettleEvery is the mean time between two settlement batches
	// (default 1 min), drawn from an exponential distribution; a batch
	// settles up to SettleBatch channels (default 4) taken at random,
	// each through an isolation of its own and after a random pause of
	// up to SettleGap (default 10 s).
	SettleEvery time.Duration
	SettleBatch int
	SettleGap   time.Duration
	// Pool is the pool of denominations that funds channels.
	Pool PoolConfig
	// FundDelay and FundMaxDelay bound when a circuit's channels are
	// funded after its build (ChannelsConfig; defaults 1 s and 8 s).
	FundDelay, FundMaxDelay time.Duration
	Logger                  *slog.Logger
	// Standby configures the channels a hidden service keeps funded in
	// advance to its guards and vanguards (Payer.Standby).
	Standby StandbyConfig
}

// Payer pays a client's circuits from a wallet: Configure a
// client.Config with it and run Run beside the manager.
type Payer struct {
	cfg    PayerConfig
	wallet *wallet.Wallet
	paid   *Channels
	paths  *Paths
	stand  *Standby
	mgr    atomic.Pointer[client.CircuitManager]

	reclaimed atomic.Uint64 // msat taken back from settled channels
	mintAway  atomic.Bool   // paid paths are refused: the mint cannot be reached
	spentHS   atomic.Uint64 // msat paid by circuits built outside the manager
}

// Settlement defaults (PayerConfig).
const (
	DefaultSettleEvery = time.Minute
	DefaultSettleBatch = 4
	DefaultSettleGap   = 10 * time.Second
)

// OpenPayer opens the wallet, fetches the mint's keyset (within ctx) and
// replays the channel book.
func OpenPayer(ctx context.Context, cfg PayerConfig) (*Payer, error) {
	if cfg.SettleEvery <= 0 {
		cfg.SettleEvery = DefaultSettleEvery
	}
	if cfg.SettleBatch <= 0 {
		cfg.SettleBatch = DefaultSettleBatch
	}
	if cfg.SettleGap <= 0 {
		cfg.SettleGap = DefaultSettleGap
	}
	cfg.Pool.defaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := OpenWallet(cfg.Wallet)
	if err != nil {
		return nil, err
	}
	p := &Payer{cfg: cfg, wallet: w}
	if err := p.open(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return p, nil
}

func (p *Payer) open(ctx context.Context) error {
	if err := p.loadKeysets(ctx); err != nil {
		return fmt.Errorf("payment: the mint %s cannot be reached: %w", p.wallet.MintURL(), err)
	}
	dir := p.cfg.Wallet.Dir
	seed, err := keyfile.Load(filepath.Join(dir, ChannelSeedFile), 32)
	if err != nil {
		return fmt.Errorf("payment: %w", err)
	}
	book := filepath.Join(dir, ChannelDir)
	if err := os.MkdirAll(book, 0o700); err != nil {
		return fmt.Errorf("payment: %w", err)
	}
	if p.paid, err = OpenChannels(ChannelsConfig{Wallet: p.wallet, Seed: seed, Dir: book, Now: p.cfg.Wallet.Now,
		FundDelay: p.cfg.FundDelay, FundMaxDelay: p.cfg.FundMaxDelay}); err != nil {
		return fmt.Errorf("payment: %w", err)
	}
	p.paths = &Paths{C: p.paid, Budget: p.cfg.Budget}
	p.stand = NewStandby(p.paid, p.cfg.Standby, 0)
	p.stand.onPaid = func(msat uint64) { p.spentHS.Add(msat) }
	return nil
}

// loadKeysets fetches the mint's keysets. Through circuits it tries again
// with back-off until ctx ends while the mint cannot be reached: right
// after a start the circuits may still fail (relays that have not learned
// of each other yet). A direct connection, or a mint that answers with a
// refusal, fails at once.
func (p *Payer) loadKeysets(ctx context.Context) error {
	wait := 250 * time.Millisecond
	for {
		err := p.wallet.Load(WithMintOp(ctx, NewMintOp(MintKeysets)))
		var refused *wallet.MintError
		if err == nil || errors.As(err, &refused) || p.cfg.Wallet.DirectMintConnectionUnsafe {
			return err
		}
		p.cfg.Logger.Debug("the mint could not be reached; trying again", "in", wait, "err", err)
		if sleep(ctx, wait) != nil {
			return err
		}
		wait = min(2*wait, 4*time.Second)
	}
}

// Configure makes a manager's configuration pay: paths use free relays
// and paid ones of the wallet's mint, and every circuit is paid.
func (p *Payer) Configure(cfg *client.Config) {
	cfg.Usable = p.paid.Usable
	cfg.Pay = p.pay
}

// pay is Paths.Pay, warning when paid paths are refused because the mint
// could not be reached: once, until a path is paid again.
func (p *Payer) pay(path []*descriptor.Relay) (client.PayConfig, error) {
	pc, err := p.paths.Pay(path)
	switch {
	case errors.Is(err, ErrMintUnreachable):
		if !p.mintAway.Swap(true) {
			p.cfg.Logger.Warn("new circuits through paid relays fail: the mint cannot be reached to fund their channels; retrying with back-off",
				"mint", p.wallet.MintURL())
		}
	case err == nil:
		p.mintAway.Store(false)
	}
	return pc, err
}

// Watch reports the manager's spending in Payments.
func (p *Payer) Watch(m *client.CircuitManager) { p.mgr.Store(m) }

// Balance is what the wallet holds, in its unit; Unit is that unit.
func (p *Payer) Balance() uint64 { return p.wallet.Balance() }
func (p *Payer) Unit() string    { return p.wallet.Unit() }

// MintURL is the wallet's mint.
func (p *Payer) MintURL() string { return p.wallet.MintURL() }

// Settle takes back what the channels of closed circuits did not spend
// (those their relays closed, and refunds after expiry).
func (p *Payer) Settle(ctx context.Context) (SettleReport, error) {
	rep, err := p.paid.Settle(ctx)
	p.reclaimed.Add(rep.Reclaimed * MsatPer(p.wallet.Unit()))
	return rep, err
}

// Run fills the pool, refills the standby channels and settles channels,
// each at random times (see PoolConfig, StandbyConfig and
// PayerConfig.SettleEvery), until ctx ends.
func (p *Payer) Run(ctx context.Context) {
	log := p.cfg.Logger
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.paid.runPool(ctx, p.cfg.Pool, func(err error) {
			log.Info("the pool of ecash could not be filled; channels are funded by splitting on demand meanwhile")
			log.Debug("pool fill failed", "err", err)
		})
	}()
	defer func() { <-done }()
	standbyDone := make(chan struct{})
	go func() {
		defer close(standbyDone)
		p.stand.run(ctx, func(err error) {
			log.Info("standby channels of hidden services could not be funded; trying again later")
			log.Debug("standby refill failed", "err", err)
		})
	}()
	defer func() { <-standbyDone }()
	for {
		if sleep(ctx, poolGap(p.cfg.SettleEvery)) != nil {
			return
		}
		rep, err := p.paid.settleBatch(ctx, p.cfg.SettleBatch, p.cfg.SettleGap)
		p.reclaimed.Add(rep.Reclaimed * MsatPer(p.wallet.Unit()))
		if err != nil && ctx.Err() == nil {
			log.Info("settlement postponed: the mint could not be reached")
			log.Debug("settlement failed", "err", err)
		} else if rep.Settled > 0 {
			log.Info("payment channels settled", "channels", rep.Settled, "reclaimed", rep.Reclaimed, "unit", p.wallet.Unit())
		}
	}
}

// FillPool fills the pool now (Run fills it at random times).
func (p *Payer) FillPool(ctx context.Context) (int, error) {
	return p.paid.FillPool(ctx, p.cfg.Pool.Bundles, p.cfg.Pool.Capacities)
}

// Channels is the payer's channels.
func (p *Payer) Channels() *Channels { return p.paid }

// Close settles what it can within a few seconds and closes the wallet.
// Channels whose relays have not closed them yet stay booked: their
// remainders come back at a later start, or as refunds after expiry.
func (p *Payer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := p.Settle(ctx)
	if err != nil {
		p.cfg.Logger.Debug("settlement at shutdown failed", "err", err)
	}
	if rep.Settled > 0 {
		p.cfg.Logger.Info("payment channels settled", "channels", rep.Settled, "reclaimed", rep.Reclaimed, "unit", p.wallet.Unit())
	}
	if rep.Open > 0 {
		p.cfg.Logger.Info("payment channels still open at relays; their remainders come back at a later start",
			"channels", rep.Open)
	}
	return errors.Join(p.paid.Close(), p.wallet.Close())
}

// Spent is what the circuits paid, in msat: those of the manager being
// watched and those built outside it.
func (p *Payer) Spent() uint64 {
	spent := p.spentHS.Load()
	if m := p.mgr.Load(); m != nil {
		spent += m.Spent()
	}
	return spent
}

// Reclaimed is what settled channels brought back, in msat.
func (p *Payer) Reclaimed() uint64 { return p.reclaimed.Load() }

// Pay says how to pay a path (client.Config.Pay), for circuits built
// outside a manager: hidden services'.
func (p *Payer) Pay(path []*descriptor.Relay) (client.PayConfig, error) {
	cfg, err := p.pay(path)
	cfg.OnPaid = func(msat uint64) { p.spentHS.Add(msat) }
	return cfg, err
}

// Standby is the payer's standby channels: a hidden service's
// rendezvous circuits are paid from them (hidden.Config.Standby), and
// Run refills them at random times.
func (p *Payer) Standby() *Standby { return p.stand }

// Wallet is the wallet the channels are funded from.
func (p *Payer) Wallet() *wallet.Wallet { return p.wallet }
