package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/obolnet/obol/circuit"
)

// HopPayer pays one relay of a circuit over one payment channel. It deals
// in relay cell bodies: what they hold (payment messages, fragmented) is
// the payment layer's business, not this package's. Package cmd/internal/
// paid implements it over package payment and a wallet.
type HopPayer interface {
	// Open funds the channel (it may call the mint) and returns the cell
	// bodies of its CHANNEL_OPEN, sent as RelayPayChannelOpen.
	Open(ctx context.Context) ([][]byte, error)
	// PayUpTo returns the cell bodies of a BALANCE_UPDATE, sent as
	// RelayPayBalanceUpdate, that brings the total paid to at least msat,
	// or nil if that much is paid already.
	PayUpTo(msat uint64) ([][]byte, error)
	// Reply handles the body of one RelayPayAck from the relay.
	Reply(body []byte) error
}

// Releaser is a HopPayer that can give a channel its Open funded, but
// that was never offered to the relay (the circuit ended first), to a
// later circuit through the same relay: Payments calls Unused once Open
// has returned such a channel. The funding is not then locked until the
// channel's expiry.
type Releaser interface {
	Unused()
}

// Hurrier is a HopPayer whose Open may wait before it funds its channel
// (a funding time drawn at random, so that fundings do not follow
// builds). Hurry asks it to fund at once, from any goroutine. Payments
// calls it when the circuit needs the channel: once the circuit has moved
// half the hop's free allowance while the channel is not open yet, and
// for a channel opened because the hop's last one was full.
type Hurrier interface {
	Hurry()
}

// Terms are what a relay charges, from its descriptor; prices in msat.
type Terms struct {
	PerMiB, PerCircuit uint64
	// PrepayBytes is how far ahead of its traffic a client pays;
	// FreeBytes what a circuit may move before it has paid.
	PrepayBytes, FreeBytes uint64
}

// Owed is what a circuit that moved bytes of cells owes the relay:
// PerCircuit + ⌈bytes × PerMiB / 2^20⌉ msat (specs/05-payment.md).
func (t Terms) Owed(bytes uint64) uint64 {
	return owed(bytes, t.PerMiB, t.PerCircuit)
}

// owed computes the formula, saturating at the largest uint64.
func owed(bytes, perMiB, perCircuit uint64) uint64 {
	hi, lo := bits.Mul64(bytes, perMiB)
	if hi>>20 != 0 {
		return math.MaxUint64
	}
	q := lo>>20 | hi<<44
	if lo&(1<<20-1) != 0 && q < math.MaxUint64 {
		q++
	}
	sum, carry := bits.Add64(q, perCircuit, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return sum
}

// addSat adds, saturating at the largest uint64.
func addSat(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return math.MaxUint64
	}
	return s
}

// HopPayment is one hop's payer and terms.
type HopPayment struct {
	Payer HopPayer
	Terms Terms
	// Next, if set, returns the payer of a new channel to the same relay
	// for when the current one is full (PayUpTo fails with
	// ErrChannelFull); at most MaxChannelsPerHop channels per hop.
	Next func() HopPayer
}

// MaxChannelsPerHop bounds the channels a circuit opens to one relay
// (relays accept 4 per circuit).
const MaxChannelsPerHop = 4

// PayConfig configures the payments of one circuit.
type PayConfig struct {
	// Hops pay the circuit's relays, first hop first; a nil Payer is a
	// free hop.
	Hops []HopPayment
	// Budget bounds what the circuit may cost, in msat (0: no bound).
	Budget uint64
	// Interval is how often traffic is checked against what is paid
	// (default 10 ms).
	Interval time.Duration
	// OnPaid, if set, is told of every payment's amount in msat, as it
	// is sent: for a running account of spending.
	OnPaid func(msat uint64)
	// Stale, if set, reports that the circuit can no longer be paid for
	// long (its channels are not funded yet and the mint cannot be
	// reached): the manager gives it no new stream, and closes it once
	// it carries none, rather than let a request start on it and be cut
	// when the free allowance runs out.
	Stale func() bool
}

// Payment errors.
var (
	// ErrUnaffordable: the path's prices exceed the budget before any
	// traffic; choose another path.
	ErrUnaffordable = errors.New("client: path costs more than the budget")
	// ErrBudget: the circuit has spent its budget; relays will pause it
	// and tear it down. Build a new circuit with a new budget.
	ErrBudget = errors.New("client: payment budget spent")
	// ErrChannelFull is what a HopPayer's PayUpTo wraps when its channel
	// cannot carry the amount: open another (HopPayment.Next).
	ErrChannelFull = errors.New("client: payment channel full")
)

// Affordable reports whether a circuit over hops can be paid within budget
// (msat) for moving bytes of cells, the prepay windows included.
func Affordable(hops []Terms, bytes, budget uint64) bool {
	var sum uint64
	for _, t := range hops {
		var c uint64
		sum, c = bits.Add64(sum, t.Owed(addSat(bytes, t.PrepayBytes)), 0)
		if c != 0 {
			return false
		}
	}
	return budget == 0 || sum <= budget
}

// Payments pays a circuit's relays ahead of its traffic: it opens one
// channel per paid hop, then keeps each hop paid by its prepay window
// (with jitter, so that top-ups do not mark the circuit), within the
// budget. Each hop's messages are sealed to that hop only.
type Payments struct {
	c       *Circuit
	cfg     PayConfig
	replies chan reply
	dropped atomic.Uint64
	sent    atomic.Uint64 // payment cells sent
	got     atomic.Uint64 // payment replies received

	// Run's goroutine owns the fields below.
	payers   []HopPayer // each hop's current payer
	paid     []uint64   // msat asked of each hop, over all its channels
	base     []uint64   // msat paid on each hop's earlier channels
	channels []int      // channels opened to each hop
	open     []bool     // the hop's channel is open
}

type reply struct {
	hop  int
	body []byte
}

// NewPayments prepares the payments of c. It fails with ErrUnaffordable if
// the prepay windows alone exceed the budget. It starts nothing: call Run.
func NewPayments(c *Circuit, cfg PayConfig) (*Payments, error) {
	if len(cfg.Hops) != len(c.hops) {
		return nil, fmt.Errorf("client: %d hop payments for %d hops", len(cfg.Hops), len(c.hops))
	}
	terms := make([]Terms, len(cfg.Hops))
	for i, h := range cfg.Hops {
		terms[i] = h.Terms
	}
	if !Affordable(terms, 0, cfg.Budget) {
		return nil, ErrUnaffordable
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Millisecond
	}
	n := len(cfg.Hops)
	p := &Payments{c: c, cfg: cfg, replies: make(chan reply, 256), payers: make([]HopPayer, n),
		paid: make([]uint64, n), base: make([]uint64, n), channels: make([]int, n), open: make([]bool, n)}
	for i, h := range cfg.Hops {
		p.payers[i] = h.Payer
	}
	return p, nil
}

// Run opens the channels and pays until the circuit closes (nil), ctx ends
// (nil) or paying fails: ErrBudget, a relay's refusal, or a channel that
// is full. It takes the circuit's payment replies; its control handler
// (SetControl) stays free for other uses.
func (p *Payments) Run(ctx context.Context) error {
	err := p.run(ctx)
	select {
	case <-p.c.Done():
		return nil // whatever failed, the circuit is gone
	default:
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (p *Payments) run(ctx context.Context) error {
	p.c.setPayment(p.onControl)
	stop := p.watchDemand()
	defer stop()
	// Every paid hop funds its channel at its own time, all at once; the
	// CHANNEL_OPENs go out first hop first.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opens := make([]chan openResult, len(p.cfg.Hops))
	for i, h := range p.cfg.Hops {
		if h.Payer == nil {
			continue
		}
		opens[i] = make(chan openResult, 1)
		go func() {
			bodies, err := h.Payer.Open(fctx)
			opens[i] <- openResult{bodies, err}
		}()
	}
	taken := make([]bool, len(opens))
	defer p.release(opens, taken)
	for i, h := range p.cfg.Hops {
		if h.Payer == nil {
			continue
		}
		var r openResult
		select {
		case r = <-opens[i]:
		case <-ctx.Done():
			return nil
		case <-p.c.Done():
			return nil
		}
		taken[i] = true
		if r.err != nil {
			return fmt.Errorf("client: open channel to hop %d: %w", i, r.err)
		}
		if err := p.sendOpen(ctx, i, r.bodies); err != nil {
			return err
		}
		if err := p.topUp(ctx); err != nil { // pay this hop before opening the next
			return err
		}
	}
	stop() // every channel is open: nothing left to hurry
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		if err := p.topUp(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.c.Done():
			return nil
		case r := <-p.replies:
			if err := p.payers[r.hop].Reply(r.body); err != nil {
				return fmt.Errorf("client: hop %d: %w", r.hop, err)
			}
		case <-t.C:
		}
	}
}

// release hands each first channel whose Open result run did not take —
// its funding still under way, or done, when the circuit ended — back to
// its payer (Releaser) once Open returns: the channel was never offered
// to the relay.
func (p *Payments) release(opens []chan openResult, taken []bool) {
	for i, ch := range opens {
		if ch == nil || taken[i] {
			continue
		}
		rel, ok := p.cfg.Hops[i].Payer.(Releaser)
		go func() {
			if r := <-ch; r.err == nil && ok {
				rel.Unused()
			}
		}()
	}
}

// watchDemand hurries the first payers (Hurrier) of the hops whose
// channels the circuit needs before they are funded: those of which it
// has moved half the free allowance. A relay pauses a circuit that moves
// its whole allowance before paying, so a bulk transfer on a fresh
// circuit would otherwise stall until the funding time. It returns a
// func that stops the watch (once or more).
func (p *Payments) watchDemand() (stop func()) {
	var waiting []int
	for i, h := range p.cfg.Hops {
		if _, ok := h.Payer.(Hurrier); ok {
			waiting = append(waiting, i)
		}
	}
	done := make(chan struct{})
	if len(waiting) == 0 {
		return func() {}
	}
	go func() {
		t := time.NewTicker(p.cfg.Interval)
		defer t.Stop()
		for len(waiting) > 0 {
			select {
			case <-done:
				return
			case <-p.c.Done():
				return
			case <-t.C:
			}
			bytes := p.c.cellCount() * circuit.CellSize
			waiting = slices.DeleteFunc(waiting, func(i int) bool {
				h := p.cfg.Hops[i]
				if 2*bytes < h.Terms.FreeBytes {
					return false
				}
				h.Payer.(Hurrier).Hurry()
				return true
			})
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// onControl passes payment replies to Run; it runs on the circuit's
// receive path and must not block.
func (p *Payments) onControl(hop int, rc circuit.RelayCell) {
	if rc.Command != circuit.RelayPayAck || hop >= len(p.cfg.Hops) || p.cfg.Hops[hop].Payer == nil {
		return
	}
	p.got.Add(1)
	select {
	case p.replies <- reply{hop, append([]byte(nil), rc.Body...)}:
	default:
		p.dropped.Add(1) // replies only confirm; a lost one changes nothing
	}
}

// topUp pays every open hop whose paid-ahead margin fell below three
// quarters of its window up to a full window, with up to a quarter window
// of jitter. A circuit that has moved less than half the free allowance
// pays only what it owes: a prebuilt circuit that stays idle, or one
// that carries a small request, costs no window it does not use.
func (p *Payments) topUp(ctx context.Context) error {
	bytes := p.c.cellCount() * circuit.CellSize
	var total uint64
	targets := make([]uint64, len(p.paid))
	for i, h := range p.cfg.Hops {
		targets[i] = p.paid[i]
		w := h.Terms.PrepayBytes
		if 2*bytes < h.Terms.FreeBytes {
			w = 0 // well within the allowance: pay what is owed, nothing ahead
		}
		if p.open[i] && p.paid[i] < h.Terms.Owed(bytes+w*3/4) {
			targets[i] = h.Terms.Owed(bytes + w + rand.N(w/4+1))
		}
		total += targets[i]
	}
	if p.cfg.Budget != 0 && total > p.cfg.Budget {
		return ErrBudget
	}
	for i := range p.cfg.Hops {
		if targets[i] == p.paid[i] {
			continue
		}
		if err := p.pay(ctx, i, targets[i]); err != nil {
			return err
		}
	}
	return nil
}

// pay brings hop i's total to target, on a new channel if the current one
// is full and the hop allows another.
func (p *Payments) pay(ctx context.Context, i int, target uint64) error {
	bodies, err := p.payers[i].PayUpTo(target - p.base[i])
	if errors.Is(err, ErrChannelFull) && p.cfg.Hops[i].Next != nil && p.channels[i] < MaxChannelsPerHop {
		p.payers[i] = p.cfg.Hops[i].Next()
		p.base[i] = p.paid[i]
		if h, ok := p.payers[i].(Hurrier); ok {
			h.Hurry() // the circuit is moving traffic on this hop now
		}
		if err := p.openChannel(ctx, i); err != nil {
			return err
		}
		bodies, err = p.payers[i].PayUpTo(target - p.base[i])
	}
	if err != nil {
		return fmt.Errorf("client: pay hop %d: %w", i, err)
	}
	delta := target - p.paid[i]
	p.paid[i] = target
	if p.cfg.OnPaid != nil {
		p.cfg.OnPaid(delta)
	}
	return p.send(ctx, i, circuit.RelayPayBalanceUpdate, bodies)
}

// openResult is what a hop payer's Open returned.
type openResult struct {
	bodies [][]byte
	err    error
}

// openChannel funds and opens hop i's current payer's channel.
func (p *Payments) openChannel(ctx context.Context, i int) error {
	bodies, err := p.payers[i].Open(ctx)
	if err != nil {
		return fmt.Errorf("client: open channel to hop %d: %w", i, err)
	}
	return p.sendOpen(ctx, i, bodies)
}

// sendOpen sends hop i's CHANNEL_OPEN, its channel funded.
func (p *Payments) sendOpen(ctx context.Context, i int, bodies [][]byte) error {
	if err := p.send(ctx, i, circuit.RelayPayChannelOpen, bodies); err != nil {
		return err
	}
	p.channels[i]++
	p.open[i] = true
	return nil
}

func (p *Payments) send(ctx context.Context, hop int, cmd circuit.RelayCommand, bodies [][]byte) error {
	for _, b := range bodies {
		if err := p.c.SendTo(ctx, hop, circuit.RelayCell{Command: cmd, Body: b}); err != nil {
			return fmt.Errorf("client: send payment to hop %d: %w", hop, err)
		}
		p.sent.Add(1)
	}
	return nil
}

// PayFor pays c's relays as cfg says until c closes, in a goroutine of
// its own; if the payments fail, it closes c. ended, if set, is called
// with what each hop was paid once the payments have stopped. It fails
// only if the payments cannot start (ErrUnaffordable), and then calls
// nothing.
func PayFor(c *Circuit, cfg PayConfig, log *slog.Logger, ended func(paid []uint64)) error {
	p, err := NewPayments(c, cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		select {
		case <-c.Done():
		case <-ctx.Done():
		}
	}()
	go func() {
		defer cancel()
		err := p.Run(ctx)
		if err != nil {
			if log != nil {
				log.Debug("client: circuit payments failed; closing it", "err", err)
			}
			c.Close()
		}
		if ended != nil {
			ended(p.Paid())
		}
	}()
	return nil
}

// Paid is what each hop was paid so far, in msat; call it after Run.
func (p *Payments) Paid() []uint64 { return append([]uint64(nil), p.paid...) }

// Cells counts the payment cells sent and the replies received so far:
// the payments' cost in traffic.
func (p *Payments) Cells() (sent, received uint64) { return p.sent.Load(), p.got.Load() }

// cellCount is the number of cells the circuit has sent and received on
// its first link: an upper bound of what any hop has metered of the
// cells that reached the client.
func (c *Circuit) cellCount() uint64 {
	in, out := c.lc.Counts()
	return in + out
}
