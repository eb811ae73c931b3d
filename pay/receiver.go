package pay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/keyfile"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/wallet"
	"github.com/obolnet/obol/router"
)

// Files of a paid relay's data directory.
const (
	ReceiverKeyFile = "cashu-receiver.key" // secp256k1 key channels are locked to
	LedgerFile      = "ledger.jsonl"       // channels and their balances
	WalletDir       = "wallet"             // what settlement brings in (a wallet directory)
)

// RelayPayment makes a relay charge for circuits: its terms go into the
// descriptor, and the relay pauses circuits that do not pay them.
type RelayPayment struct {
	Mint string // the one mint accepted, by URL
	Unit string // default sat
	// PerMiB and PerCircuit are the prices, in msat (specs/05-payment.md).
	PerMiB, PerCircuit uint64
	// PrepayBytes is how far ahead of its traffic a client must pay
	// (default 6 MiB: more than a full congestion window in flight,
	// specs/05-payment.md §7.8); FreeBytes what a circuit may move before
	// it has paid (default 128 KiB: enough to open its channels).
	PrepayBytes, FreeBytes uint64
	// Grace is how long a circuit may owe before it is torn down
	// (default 30 s).
	Grace time.Duration
	// MaxCapacity bounds a channel's capacity, in the unit (0: none).
	MaxCapacity uint64
	// MinLifetime and MaxLifetime bound a channel's lifetime (defaults
	// 1 h and 7 days).
	MinLifetime, MaxLifetime time.Duration
	// SettleDelay and SettleMaxDelay bound the random wait between a
	// circuit's end and its channel's close (defaults 1 and 10 min).
	SettleDelay, SettleMaxDelay time.Duration
	// Transport carries the relay's requests to the mint (its channel
	// closes), each through an isolation of its own, so that the mint
	// cannot tell which relay closes which channel. Required unless
	// DirectMintConnectionUnsafe is set.
	Transport MintTransport
	// DirectMintConnectionUnsafe lets the relay reach the mint from its
	// own address: the mint learns which relay was paid by which funding
	// token, and with the client's funding times, the relays of a
	// circuit. For local tests and an operator who asks.
	DirectMintConnectionUnsafe bool
	// HTTPClient reaches the mint directly (with
	// DirectMintConnectionUnsafe; default http.DefaultClient).
	HTTPClient *http.Client
}

// Payment defaults.
const (
	DefaultPrepayBytes = 6 << 20
	DefaultFreeBytes   = 128 << 10
)

func (p RelayPayment) withDefaults() RelayPayment {
	if p.Unit == "" {
		p.Unit = "sat"
	}
	if p.PrepayBytes == 0 {
		p.PrepayBytes = DefaultPrepayBytes
	}
	if p.FreeBytes == 0 {
		p.FreeBytes = DefaultFreeBytes
	}
	if p.Grace == 0 {
		p.Grace = 30 * time.Second
	}
	if p.MinLifetime == 0 {
		p.MinLifetime = time.Hour
	}
	if p.MaxLifetime == 0 {
		p.MaxLifetime = 7 * 24 * time.Hour
	}
	if p.SettleDelay == 0 {
		p.SettleDelay = time.Minute
	}
	if p.SettleMaxDelay == 0 {
		p.SettleMaxDelay = max(10*time.Minute, p.SettleDelay)
	}
	return p
}

// Validate reports the first invalid field.
func (p *RelayPayment) Validate() error {
	d := p.withDefaults()
	switch {
	case d.Mint == "":
		return errors.New("relay: payment: no mint URL")
	case d.Unit != "sat" && d.Unit != "msat":
		return fmt.Errorf("relay: payment: unit %q is not sat or msat", d.Unit)
	case d.PerMiB == 0 && d.PerCircuit == 0:
		return errors.New("relay: payment: both prices are zero; run the relay unpaid instead")
	case d.Grace < time.Second:
		return fmt.Errorf("relay: payment: grace %v shorter than 1s", d.Grace)
	case d.MinLifetime > d.MaxLifetime:
		return fmt.Errorf("relay: payment: channel lifetime bounds %v..%v are reversed", d.MinLifetime, d.MaxLifetime)
	case d.MaxLifetime > time.Duration(1<<32-1)*time.Second:
		return fmt.Errorf("relay: payment: channel lifetime %v too long", d.MaxLifetime)
	case d.SettleDelay < 0 || d.SettleMaxDelay < d.SettleDelay:
		return fmt.Errorf("relay: payment: settle delays %v..%v are not in order", d.SettleDelay, d.SettleMaxDelay)
	}
	return nil
}

// Payee is a paid relay's payment machinery, the relay's side of what a
// Payer pays: the receiver key its channels are locked to, the ledger of
// those channels, the meter that pauses circuits that do not pay
// (router.Config.Meter), the settler that closes channels at the mint, and
// the wallet their ecash goes to.
type Payee struct {
	cfg     RelayPayment
	opts    PayeeOptions
	key     *btcec.PrivateKey
	store   *payment.FileStore
	ledger  *payment.Ledger
	meter   *router.PaidMeter
	wallet  *wallet.Wallet
	settler *router.Settler
	loaded  chan struct{} // closed once the wallet has the mint's keyset
}

// PayeeOptions are what a Payee takes from the relay it serves.
type PayeeOptions struct {
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default: discard
	// OnSettled, if set, is told of every settlement.
	OnSettled func(router.Settlement)
	// OnLoaded, if set, is called when Run (or Load) has fetched the
	// mint's keyset through the Transport: Terms then name it.
	OnLoaded func()
}

// OpenPayee opens the ledger and the wallet in dir. Over a direct
// connection it fetches the mint's keyset (which channels are checked
// against) within ctx. Through a Transport it contacts nothing: the
// relay's circuits to the mint need the network the relay is about to
// join, so Run fetches the keyset once they can be built (Loaded), and
// until then the relay refuses channels and its Terms list no keyset.
func OpenPayee(ctx context.Context, dir string, p RelayPayment, c PayeeOptions) (*Payee, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	keyBytes, err := keyfile.Load(filepath.Join(dir, ReceiverKeyFile), 32)
	if err != nil {
		return nil, fmt.Errorf("relay: payment: %w", err)
	}
	key, _ := btcec.PrivKeyFromBytes(keyBytes)
	// The earnings wallet is laid out as `obol wallet` expects, so that
	// `obol wallet --data-dir DATADIR/wallet` spends them.
	w, err := openWallet(WalletConfig{Dir: filepath.Join(dir, WalletDir), Mint: p.Mint, Unit: p.Unit,
		Transport: p.Transport, DirectMintConnectionUnsafe: p.DirectMintConnectionUnsafe,
		HTTPClient: p.HTTPClient, Now: c.Now}, MintSettle)
	if err != nil {
		return nil, fmt.Errorf("relay: payment: %w", err)
	}
	rp := &Payee{cfg: p, opts: c, key: key, wallet: w, loaded: make(chan struct{})}
	if err := rp.open(ctx, dir); err != nil {
		rp.Close()
		return nil, err
	}
	return rp, nil
}

func (rp *Payee) open(ctx context.Context, dir string) error {
	p, c := rp.cfg, rp.opts
	if p.Transport == nil {
		if err := rp.wallet.Load(WithMintOp(ctx, NewMintOp(MintKeysets))); err != nil {
			return fmt.Errorf("relay: payment: the mint %s cannot be reached: %w", p.Mint, err)
		}
		close(rp.loaded)
	}
	var recs []payment.LedgerRecord
	var err error
	if rp.store, recs, err = payment.OpenFileStore(filepath.Join(dir, LedgerFile)); err != nil {
		return fmt.Errorf("relay: payment: %w", err)
	}
	rp.ledger, err = payment.NewLedger(payment.LedgerConfig{
		ReceiverKey: rp.key, Store: rp.store, Now: c.Now,
		MinLifetime: p.MinLifetime, MaxLifetime: p.MaxLifetime, MaxCapacity: p.MaxCapacity,
		Keyset: func(mint, unit, id string) (payment.Keyset, error) {
			ks, err := rp.wallet.Keyset()
			if err != nil {
				return payment.Keyset{}, errors.New("the mint's keyset is not known yet")
			}
			if mint != p.Mint || unit != p.Unit || id != ks.ID {
				return payment.Keyset{}, errors.New("mint, unit or keyset not accepted")
			}
			return ks, nil
		}})
	if err != nil {
		return fmt.Errorf("relay: payment: %w", err)
	}
	if err := rp.ledger.Restore(recs); err != nil {
		return fmt.Errorf("relay: payment: ledger: %w", err)
	}
	rp.meter, err = router.NewPaidMeter(router.PaidConfig{Ledger: rp.ledger, PerMiB: p.PerMiB, PerCircuit: p.PerCircuit,
		FreeBytes: p.FreeBytes, Grace: p.Grace, Logger: c.Logger})
	if err != nil {
		return fmt.Errorf("relay: payment: %w", err)
	}
	rp.settler, err = router.NewSettler(router.SettlerConfig{Ledger: rp.ledger, Wallet: rp.wallet, ReceiverKey: rp.key,
		Ended: rp.meter.Ended, Delay: p.SettleDelay, MaxDelay: p.SettleMaxDelay, Now: c.Now,
		OnSettled: c.OnSettled, Logger: c.Logger})
	if err != nil {
		return fmt.Errorf("relay: payment: %w", err)
	}
	return nil
}

// Terms are what the descriptor says of the relay's payment. Before the
// keyset is loaded (Loaded) the mint is named with no keyset; the relay
// refuses channels meanwhile, and clients choose paid paths only through
// relays that name their wallet's keyset or none: publish again once it
// is loaded.
func (rp *Payee) Terms() (descriptor.Price, descriptor.Payment) {
	p := rp.cfg
	var keysets []string
	if ks, err := rp.wallet.Keyset(); err == nil {
		keysets = []string{ks.ID}
	}
	return descriptor.Price{PerMiB: p.PerMiB, PerCircuit: p.PerCircuit}, descriptor.Payment{
		Mints:        []descriptor.AcceptedMint{{URL: p.Mint, Unit: p.Unit, Keysets: keysets}},
		ReceiverKey:  rp.key.PubKey().SerializeCompressed(),
		PrepayBytes:  p.PrepayBytes,
		GraceSeconds: uint32(p.Grace / time.Second),
		FreeBytes:    p.FreeBytes,
		MaxCapacity:  p.MaxCapacity,
		MinExpiry:    uint32(p.MinLifetime / time.Second),
		MaxExpiry:    uint32(p.MaxLifetime / time.Second),
	}
}

// Meter is what router.Config.Meter takes.
func (rp *Payee) Meter() *router.PaidMeter { return rp.meter }

// Ledger is the ledger of the relay's channels.
func (rp *Payee) Ledger() *payment.Ledger { return rp.ledger }

// Balance is what the earnings wallet holds, in Unit.
func (rp *Payee) Balance() uint64 { return rp.wallet.Balance() }

// Unit is the unit of the accepted mint.
func (rp *Payee) Unit() string { return rp.cfg.Unit }

// Run fetches the mint's keyset if OpenPayee did not, then settles
// the channels of ended circuits, each after a random delay, until ctx
// ends.
func (rp *Payee) Run(ctx context.Context) error {
	if err := rp.Load(ctx); err != nil {
		return nil // ctx ended
	}
	return rp.settler.Run(ctx)
}

// Load fetches the mint's keyset through the Transport, trying again
// with back-off (250 ms doubling to 30 s) while the mint cannot be
// reached — right after a start the relay's view may not hold a path to
// it yet — until it succeeds or ctx ends. Each try is an operation of its
// own. It returns at once if the keyset is loaded.
func (rp *Payee) Load(ctx context.Context) error {
	select {
	case <-rp.loaded:
		return nil
	default:
	}
	wait := 250 * time.Millisecond
	for {
		err := rp.wallet.Load(WithMintOp(ctx, NewMintOp(MintKeysets)))
		if err == nil {
			close(rp.loaded)
			if rp.opts.OnLoaded != nil {
				rp.opts.OnLoaded()
			}
			return nil
		}
		rp.opts.Logger.Debug("the mint could not be reached for its keyset; trying again", "in", wait, "err", err)
		if sleep(ctx, wait) != nil {
			return ctx.Err()
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// Loaded is closed once the relay has the mint's keyset and accepts
// channels.
func (rp *Payee) Loaded() <-chan struct{} { return rp.loaded }

// Flush settles, at shutdown, every channel not yet settled: the relay's
// circuits are gone, so no channel takes more payments. Call it after
// Run has returned. A relay that never fetched the mint's keyset accepted
// no channel in this run; it reaches for the mint only if its ledger
// holds channels of an earlier one.
func (rp *Payee) Flush(ctx context.Context) error {
	select {
	case <-rp.loaded:
	default:
		if !rp.unsettled() {
			return nil
		}
		if err := rp.Load(ctx); err != nil {
			return err
		}
	}
	return rp.settler.Flush(ctx)
}

// unsettled reports whether the ledger holds a channel not settled.
func (rp *Payee) unsettled() bool {
	for _, c := range rp.ledger.Channels() {
		if !c.Settled {
			return true
		}
	}
	return false
}

// Close closes the ledger and the wallet.
func (rp *Payee) Close() error {
	var errs []error
	if rp.store != nil {
		errs = append(errs, rp.store.Close())
	}
	errs = append(errs, rp.wallet.Close())
	return errors.Join(errs...)
}
