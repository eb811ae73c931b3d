package pay

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/wallet"
)

// ChannelsConfig configures a Channels.
type ChannelsConfig struct {
	// Wallet funds the channels and takes back what they did not spend.
	// Required, loaded.
	Wallet *wallet.Wallet
	// Seed derives every channel's sender key (payment.ChannelKey);
	// at least 16 bytes. Required.
	Seed []byte
	// Dir holds the channel book; empty keeps it in memory (tests only:
	// a crash then loses track of funded channels).
	Dir string
	// Capacities are the standard channel capacities, in the wallet's
	// unit, ascending (default 16, 64, 256, 1024, 4096). A channel gets
	// the smallest that covers its need, so capacities say little.
	Capacities []uint64
	// Lifetime is a channel's least lifetime (default 24 h); its expiry is
	// rounded up to a multiple of ExpiryBucket (default 6 h), so that
	// channels opened near the same time share an expiry.
	Lifetime, ExpiryBucket time.Duration
	// FundDelay and FundMaxDelay bound when a channel is funded: at a
	// time drawn uniformly between them after its circuit's payments
	// start (defaults 1 s and 8 s), each hop of a circuit independently,
	// so that no funding falls on a circuit's build and the fundings of
	// one circuit come at unrelated times. The relays' free allowance
	// carries the circuit meanwhile; a circuit that moves more waits.
	FundDelay, FundMaxDelay time.Duration
	// Sleep waits d or until ctx ends (default: a timer); tests replace
	// it to hold fundings back.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *ChannelsConfig) defaults() {
	if len(c.Capacities) == 0 {
		c.Capacities = []uint64{16, 64, 256, 1024, 4096}
	}
	if c.Lifetime <= 0 {
		c.Lifetime = 24 * time.Hour
	}
	if c.ExpiryBucket <= 0 {
		c.ExpiryBucket = 6 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.FundDelay <= 0 {
		c.FundDelay = DefaultFundDelay
	}
	if c.FundMaxDelay <= 0 {
		c.FundMaxDelay = DefaultFundMaxDelay
	}
	c.FundMaxDelay = max(c.FundMaxDelay, c.FundDelay)
	if c.Sleep == nil {
		c.Sleep = sleep
	}
}

// DefaultTerms are the terms this package's tests and benchmarks call
// default: 1 sat per MiB and per circuit, 1 MiB paid ahead, a 128 KiB
// allowance — enough for the first cells while the channels open.
var DefaultTerms = client.Terms{PerMiB: 1000, PerCircuit: 1000, PrepayBytes: 6 << 20, FreeBytes: 128 << 10}

// RelayTerms is what a client knows of a paid relay, from its verified
// descriptor.
type RelayTerms struct {
	ReceiverKey *btcec.PublicKey
	Terms       client.Terms
	// MaxCapacity is the relay's channel capacity limit (0: none).
	MaxCapacity uint64
}

// Channels opens and settles a client's channels.
type Channels struct {
	cfg ChannelsConfig

	mu      sync.Mutex // guards the fields below
	book    *book
	entries map[uint64]*bookEntry // by counter, unsettled only
	next    uint64
	// What fundings found of the mint: while fundRetryAt is ahead, the
	// last one could not reach it, and Paths.Pay refuses paid paths.
	fundBackoff time.Duration
	fundRetryAt time.Time
	// What fundings needed: capacities funded (the pool keeps bundles
	// for them), and how many had to split proofs for want of one.
	demand map[uint64]int
	splits int
	// funding are the booked channels whose funding is under way: Settle
	// leaves them alone, or it would take one for a channel never funded
	// and drop it from the book just before its funding lands.
	funding map[uint64]bool
	// spares are funded channels that were never offered to their relay
	// (their circuit ended first), by relay key, for the next circuits
	// through that relay.
	spares map[string][]standbyChannel
}

// Open replays the channel book in cfg.Dir. It does not contact the mint.
func OpenChannels(cfg ChannelsConfig) (*Channels, error) {
	if cfg.Wallet == nil || len(cfg.Seed) < 16 {
		return nil, errors.New("pay: a wallet and a seed of at least 16 bytes are required")
	}
	cfg.defaults()
	b, entries, err := openBook(cfg.Dir)
	if err != nil {
		return nil, err
	}
	c := &Channels{cfg: cfg, book: b, entries: map[uint64]*bookEntry{}, demand: map[uint64]int{}, funding: map[uint64]bool{},
		spares: map[string][]standbyChannel{}}
	for _, e := range entries {
		c.next = max(c.next, e.Counter+1)
		switch {
		case e.Settled:
			delete(c.entries, e.Counter)
		case e.Opened && e.Receiver == "": // a mark on a booked channel
			if old := c.entries[e.Counter]; old != nil {
				old.Opened = true
			}
		default:
			c.entries[e.Counter] = &e
		}
	}
	return c, nil
}

// Close closes the book; it is idempotent.
func (c *Channels) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.book.close()
}

// Capacity is the standard capacity for a need of msat: the smallest that
// covers it, or the largest (bounded by the relay's limit).
func (c *Channels) Capacity(msat uint64, r RelayTerms) (uint64, error) {
	need, err := payment.UnitsCeil(msat, c.cfg.Wallet.Unit())
	if err != nil {
		return 0, err
	}
	caps := c.cfg.Capacities
	i := sort.Search(len(caps), func(i int) bool { return caps[i] >= need })
	i = min(i, len(caps)-1)
	for i > 0 && r.MaxCapacity != 0 && caps[i] > r.MaxCapacity {
		i--
	}
	return caps[i], nil
}

// HopPayer returns the payer of a new channel of capacity (a standard
// one, see Capacity) to relay r. The channel is created and funded by the
// payer's Open.
func (c *Channels) HopPayer(r RelayTerms, capacity uint64) client.HopPayer {
	return &hopPayer{c: c, relay: r, capacity: capacity, urgent: make(chan struct{})}
}

// circuitHop is the payment of one hop of a circuit whose hops' funding
// times are drawn from the same start (s), with a channel of capacity to
// r, and a new one of the same capacity whenever the last is full.
func (c *Channels) circuitHop(r RelayTerms, capacity uint64, s *fundSchedule) client.HopPayment {
	s.unpaid.Add(1)
	return client.HopPayment{Terms: r.Terms,
		Payer: &hopPayer{c: c, relay: r, capacity: capacity, sched: s, urgent: make(chan struct{})},
		Next:  func() client.HopPayer { return c.HopPayer(r, capacity) }}
}

// CircuitHops returns the payments of a circuit's hops as Paths.Pay makes
// them: a channel of capacities[i] to relays[i], funded at a time drawn
// from the circuit's payments' start or when the circuit needs it, and a
// successor when one is full. A relay with no receiver key is a free hop.
func (c *Channels) CircuitHops(relays []RelayTerms, capacities []uint64) []client.HopPayment {
	hops := make([]client.HopPayment, len(relays))
	s := &fundSchedule{}
	for i, r := range relays {
		if r.ReceiverKey != nil {
			hops[i] = c.circuitHop(r, capacities[i], s)
		}
	}
	return hops
}

// newChannel writes a new channel ahead to the book and returns it with
// its fresh sender key; standby books it as a standby channel.
func (c *Channels) newChannel(r RelayTerms, capacity uint64, standby bool) (*payment.Channel, *btcec.PrivateKey, uint64, error) {
	ks, err := c.cfg.Wallet.Keyset()
	if err != nil {
		return nil, nil, 0, err
	}
	funding, err := payment.FundingAmountFor(capacity, ks, 0, 4*capacity+64)
	if err != nil {
		return nil, nil, 0, err
	}
	now := c.cfg.Now()
	bucket := int64(c.cfg.ExpiryBucket / time.Second)
	expiry := (now.Add(c.cfg.Lifetime).Unix() + bucket - 1) / bucket * bucket
	c.mu.Lock()
	defer c.mu.Unlock()
	e := bookEntry{Counter: c.next, Mint: c.cfg.Wallet.MintURL(), Unit: c.cfg.Wallet.Unit(), Capacity: capacity, Funding: funding,
		Keyset: ks.ID, FeePPK: ks.InputFeePPK, Setup: uint64(now.Unix()), Expiry: uint64(expiry),
		Receiver: hex.EncodeToString(r.ReceiverKey.SerializeCompressed()), Standby: standby}
	ch, key, err := c.rebuild(&e, ks)
	if err != nil {
		return nil, nil, 0, err
	}
	if err := c.book.append(e); err != nil {
		return nil, nil, 0, err
	}
	c.next++
	c.entries[e.Counter] = &e
	c.funding[e.Counter] = true // until fund returns
	return ch, key, e.Counter, nil
}

// rebuild derives a booked channel again.
func (c *Channels) rebuild(e *bookEntry, ks payment.Keyset) (*payment.Channel, *btcec.PrivateKey, error) {
	key, err := payment.ChannelKey(c.cfg.Seed, e.Counter)
	if err != nil {
		return nil, nil, err
	}
	rb, err := hex.DecodeString(e.Receiver)
	if err != nil {
		return nil, nil, err
	}
	recv, err := btcec.ParsePubKey(rb)
	if err != nil {
		return nil, nil, err
	}
	ch, err := payment.NewChannel(payment.ChannelParams{
		Mint: e.Mint, Unit: e.Unit, Capacity: e.Capacity, FundingAmount: e.Funding, KeysetID: e.Keyset,
		InputFeePPK: e.FeePPK, SetupTime: e.Setup, ExpiryTime: e.Expiry, Sender: key.PubKey(), Receiver: recv,
	}, ks, payment.ChannelSecret(key, recv))
	return ch, key, err
}

// bookedChannel is a standby channel of the book, rebuilt.
type bookedChannel struct {
	standbyChannel
	receiver *btcec.PublicKey
}

// bookedStandby rebuilds the standby channels of the book that no circuit
// took, that the wallet funded and that skip does not exclude, with their
// funding attached. It makes no mint request.
func (c *Channels) bookedStandby(skip func(counter uint64) bool) []bookedChannel {
	ks, err := c.cfg.Wallet.Keyset()
	if err != nil {
		return nil
	}
	c.mu.Lock()
	var todo []bookEntry
	for _, e := range c.entries {
		if e.Standby && !e.Opened {
			todo = append(todo, *e)
		}
	}
	c.mu.Unlock()
	var out []bookedChannel
	for _, e := range todo {
		if skip(e.Counter) {
			continue
		}
		ch, key, err := c.rebuild(&e, ks)
		if err != nil {
			continue
		}
		funding := c.cfg.Wallet.Funded(ch.ID())
		if funding == nil || ch.AttachFunding(funding) != nil {
			continue // not funded (yet): Settle marks it settled, or a recovery funds it
		}
		out = append(out, bookedChannel{standbyChannel{ch: ch, key: key, counter: e.Counter}, ch.Params().Receiver})
	}
	return out
}

// markOpened books that the standby channel of counter was taken for a
// circuit.
func (c *Channels) markOpened(counter uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[counter]
	if e == nil {
		return fmt.Errorf("pay: standby channel %d is not booked", counter)
	}
	if err := c.book.append(bookEntry{Counter: counter, Opened: true}); err != nil {
		return err
	}
	e.Opened = true
	return nil
}

// SettleReport is what Settle did: Settled counts channels settled, Open
// those their relay may still close (refundable after their expiry).
type SettleReport struct {
	Settled, Open int
	Reclaimed     uint64 // taken back into the wallet, in its unit
	// Dust is what settled channels left that was worth less than the
	// fee of taking it back: it stays at the mint.
	Dust uint64
	// Locked is the funding of the Open channels: the relays' share and
	// the client's remainder, or a refund after their expiry.
	Locked uint64
}

// Settle takes back what every booked channel did not spend: after the
// relay closed it (the remainder), or after its expiry (a refund).
// Channels still open stay booked. It first settles the wallet's pending
// operations (Recover). Run it after a restart and from time to time.
func (c *Channels) Settle(ctx context.Context) (SettleReport, error) {
	return c.settleBatch(ctx, 0, 0)
}

// settleBatch is Settle of at most n channels (0: all) taken at random,
// each after a random pause of up to gap: a batch whose channels reach
// the mint through isolations of their own, at unrelated times.
func (c *Channels) settleBatch(ctx context.Context, n int, gap time.Duration) (SettleReport, error) {
	ks, err := c.cfg.Wallet.Keyset()
	if err != nil {
		return SettleReport{}, err
	}
	// A funding swap left pending would look like a channel never funded:
	// settle the wallet's operations first.
	if n, err := c.cfg.Wallet.RecoverEach(ctx, settleOp); err != nil {
		return SettleReport{}, fmt.Errorf("pay: %d wallet operations still pending: %w", n, err)
	} else if n > 0 {
		return SettleReport{}, fmt.Errorf("pay: %d wallet operations still pending", n)
	}
	c.mu.Lock()
	todo := make([]bookEntry, 0, len(c.entries))
	for _, e := range c.entries {
		if !c.funding[e.Counter] {
			todo = append(todo, *e)
		}
	}
	c.mu.Unlock()
	// In no order the mint could match to the order of the circuits, and
	// each channel through an isolation of its own: one request never
	// names two channels, so relays and the mint together cannot tell
	// that two channels had one owner.
	rand.Shuffle(len(todo), func(i, j int) { todo[i], todo[j] = todo[j], todo[i] })
	if n > 0 && len(todo) > n {
		todo = todo[:n]
	}
	var rep SettleReport
	var errs []error
	for _, e := range todo {
		if gap > 0 {
			if err := sleep(ctx, rand.N(gap)); err != nil {
				return rep, err
			}
		}
		back, dust, err := c.settle(settleOp(ctx), &e, ks)
		rep.Dust += dust
		switch {
		case errors.Is(err, wallet.ErrChannelOpen):
			rep.Open++
			rep.Locked += e.Funding
		case err != nil:
			errs = append(errs, err)
		default:
			rep.Settled++
			rep.Reclaimed += back
		}
	}
	return rep, errors.Join(errs...)
}

func (c *Channels) settle(ctx context.Context, e *bookEntry, ks payment.Keyset) (back, dust uint64, err error) {
	ch, key, err := c.rebuild(e, ks)
	if err != nil {
		return 0, 0, err
	}
	if funding := c.cfg.Wallet.Funded(ch.ID()); funding != nil { // else never funded, or settled
		if err := ch.AttachFunding(funding); err != nil {
			return 0, 0, err
		}
		back, err = c.cfg.Wallet.Settle(ctx, ch, key)
		var d *wallet.DustError
		switch {
		case errors.As(err, &d):
			dust = d.Amount
		case err != nil:
			return 0, 0, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.book.append(bookEntry{Counter: e.Counter, Settled: true}); err != nil {
		return 0, 0, err
	}
	delete(c.entries, e.Counter)
	return back, dust, nil
}

// settleOp names a fresh settlement operation: one channel's, or one
// pending wallet operation's.
func settleOp(ctx context.Context) context.Context { return WithMintOp(ctx, NewMintOp(MintSettle)) }

var msatPerUnit = map[string]uint64{"sat": 1000, "msat": 1}

// MsatPer is the msat value of one unit; 0 for a unit it does not know.
func MsatPer(unit string) uint64 { return msatPerUnit[unit] }

// hopPayer is client.HopPayer over one channel.
type hopPayer struct {
	c        *Channels
	relay    RelayTerms
	capacity uint64
	sched    *fundSchedule // nil: the delay counts from Open
	standby  *Standby      // if set, Open takes a channel funded in advance

	urgent    chan struct{} // closed by Hurry: fund without waiting
	hurryOnce sync.Once

	// Open, then (once it returned) Run's goroutine (client.Payments),
	// owns the fields below.
	fresh *standbyChannel // the channel fundNew funded, until Unused
	payer *payment.ChannelPayer
	id    payment.ChannelID
	asm   payment.Reassembler
	msat  uint64 // asked for so far
	unit  uint64 // msat per channel unit

	mu   sync.Mutex // guards acct, a copy for AccountingOf
	acct Accounting
}

// account copies the payer's state for AccountingOf.
func (h *hopPayer) account() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.acct = Accounting{Msat: h.msat, Signed: h.payer.Signed(), Acked: h.payer.Acked(), Unit: h.unit}
}

// ErrMintUnreachable: a channel could not be funded because the mint
// could not be reached. Paths.Pay refuses paid paths with it for a while
// (5 s, doubling to 1 min while fundings keep failing) rather than build
// circuits that cannot pay; try again later.
var ErrMintUnreachable = errors.New("pay: the mint cannot be reached to fund channels")

// Back-off of paid paths after a funding could not reach the mint.
const (
	fundBackoffMin = 5 * time.Second
	fundBackoffMax = time.Minute
)

// fundResult records what a funding found of the mint: it answered (err
// nil, or a refusal), or it could not be reached (the error is then
// wrapped in ErrMintUnreachable).
func (c *Channels) fundResult(err error) error {
	var refused *wallet.MintError
	var unreachable *url.Error
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil, errors.As(err, &refused):
		c.fundBackoff, c.fundRetryAt = 0, time.Time{}
	case errors.Is(err, context.Canceled): // the circuit closed
	case errors.As(err, &unreachable):
		c.fundBackoff = min(max(2*c.fundBackoff, fundBackoffMin), fundBackoffMax)
		c.fundRetryAt = c.cfg.Now().Add(c.fundBackoff)
		return fmt.Errorf("%w: %w", ErrMintUnreachable, err)
	}
	return err
}

// mintReachable fails with ErrMintUnreachable while fundings back off.
func (c *Channels) mintReachable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if wait := c.fundRetryAt.Sub(c.cfg.Now()); wait > 0 {
		return fmt.Errorf("%w: next try in %v", ErrMintUnreachable, wait.Round(time.Second))
	}
	return nil
}

// Open implements client.HopPayer: wait for the funding time, book, fund
// (a swap at the mint, through an isolation of its own), and the
// CHANNEL_OPEN. A standby payer takes a channel funded in advance
// instead, and makes no mint request.
func (h *hopPayer) Open(ctx context.Context) ([][]byte, error) {
	var ch *payment.Channel
	var key *btcec.PrivateKey
	var err error
	if h.standby != nil {
		var sc standbyChannel
		if sc, err = h.standby.take(ctx, h.relay.ReceiverKey); err == nil {
			ch, key, h.fresh = sc.ch, sc.key, &sc
		}
	} else {
		ch, key, err = h.fundNew(ctx)
	}
	if err != nil {
		return nil, err
	}
	h.id = ch.ID()
	if h.payer, err = payment.NewChannelPayer(ch, key); err != nil {
		return nil, err
	}
	if h.unit = msatPerUnit[ch.Params().Unit]; h.unit == 0 {
		return nil, fmt.Errorf("pay: no msat conversion for unit %q", ch.Params().Unit)
	}
	open, err := h.payer.Open()
	if err != nil {
		return nil, err
	}
	h.account()
	return payment.Fragment(open, circuit.MaxRelayBody)
}

// fundNew takes a spare channel to the relay (funded for a circuit that
// ended before it was offered, see Unused), which needs no mint request;
// else it waits for the funding time, books and funds a new channel.
func (h *hopPayer) fundNew(ctx context.Context) (*payment.Channel, *btcec.PrivateKey, error) {
	sc, ok := h.c.takeSpare(h.relay, h.capacity)
	if !ok {
		if err := h.c.waitFunding(ctx, h.sched, h.urgent); err != nil {
			return nil, nil, err
		}
		ch, key, counter, err := h.c.newChannel(h.relay, h.capacity, false)
		if err != nil {
			return nil, nil, err
		}
		if err := h.c.fundResult(h.c.fund(ctx, ch, counter)); err != nil {
			return nil, nil, err
		}
		sc = standbyChannel{ch: ch, key: key, counter: counter}
	}
	if h.sched != nil {
		h.sched.unpaid.Add(-1)
	}
	h.fresh = &sc
	return sc.ch, sc.key, nil
}

// Unused implements client.Releaser: the channel Open funded, or took
// from the standby stock, was never offered to the relay (its circuit
// ended first), so the next circuit through the relay opens it rather
// than fund another, and its funding is not locked until its expiry. A
// standby channel goes back to the stock (booked as taken, so that after
// a restart it is refunded at its expiry rather than offered again).
func (h *hopPayer) Unused() {
	switch {
	case h.fresh == nil:
	case h.standby != nil:
		h.standby.add(h.relay.ReceiverKey, *h.fresh)
	default:
		h.c.addSpare(*h.fresh)
	}
	h.fresh = nil
}

// addSpare keeps sc, funded and never offered to its relay, for the next
// circuit through that relay.
func (c *Channels) addSpare(sc standbyChannel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := keyName(sc.ch.Params().Receiver)
	if len(c.spares[k]) < maxSpares {
		c.spares[k] = append(c.spares[k], sc)
	}
}

// maxSpares bounds the spare channels kept for one relay; one past it
// comes back as a refund after its expiry, as before.
const maxSpares = 8

// takeSpare returns a spare channel of capacity to r with at least half
// its lifetime left (older ones are dropped: they come back as refunds
// after their expiry).
func (c *Channels) takeSpare(r RelayTerms, capacity uint64) (standbyChannel, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := keyName(r.ReceiverKey)
	minExpiry := uint64(c.cfg.Now().Add(c.cfg.Lifetime / 2).Unix())
	list := slices.DeleteFunc(c.spares[k], func(sc standbyChannel) bool { return sc.ch.Params().ExpiryTime < minExpiry })
	for i, sc := range list {
		if sc.ch.Params().Capacity == capacity {
			c.spares[k] = slices.Delete(list, i, i+1)
			return sc, true
		}
	}
	c.spares[k] = list
	return standbyChannel{}, false
}

// Hurry implements client.Hurrier: the circuit needs the channel now, so
// Open funds it without waiting for the rest of its funding time. A
// standby payer makes no mint request anyway.
func (h *hopPayer) Hurry() {
	if h.urgent != nil {
		h.hurryOnce.Do(func() { close(h.urgent) })
	}
}

// PayUpTo implements client.HopPayer.
func (h *hopPayer) PayUpTo(msat uint64) ([][]byte, error) {
	if h.payer == nil {
		return nil, errors.New("pay: channel not open")
	}
	if msat <= h.msat {
		return nil, nil
	}
	u, err := h.payer.PayMsat(msat - h.msat)
	if errors.Is(err, payment.ErrOverCapacity) {
		return nil, fmt.Errorf("%w: %w", client.ErrChannelFull, err)
	}
	if err != nil {
		return nil, err
	}
	h.msat = msat
	h.account()
	if u == nil {
		return nil, nil
	}
	return payment.Fragment(u, circuit.MaxRelayBody)
}

// Reply implements client.HopPayer.
func (h *hopPayer) Reply(body []byte) error {
	msg, err := h.asm.Add(body)
	if err != nil || msg == nil {
		return err
	}
	if h.payer == nil {
		return errors.New("pay: reply before open")
	}
	if !h.mine(msg) {
		return nil // about an earlier channel to the same relay
	}
	err = h.payer.HandleReply(msg)
	h.account()
	if err != nil {
		return fmt.Errorf("pay: %w", err)
	}
	return nil
}

// mine reports whether a reply is about this payer's channel (or about
// none: an ERROR to a malformed message).
func (h *hopPayer) mine(msg []byte) bool {
	switch m, _ := payment.DecodeMessage(msg); m := m.(type) {
	case *payment.Ack:
		return m.Channel == h.id
	case *payment.ErrorReply:
		return m.Channel == h.id || m.Channel == payment.ChannelID{}
	}
	return true // malformed: HandleReply says so
}

// Accounting of a hop payer, for tests and reports.
type Accounting struct {
	Msat   uint64 // asked for
	Signed uint64 // highest balance signed, channel units
	Acked  uint64 // highest balance the relay acknowledged
	Unit   uint64 // msat per channel unit
}

// AccountingOf reports a payer made by HopPayer.
func AccountingOf(p client.HopPayer) Accounting {
	h, ok := p.(*hopPayer)
	if !ok {
		return Accounting{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.acct
}
