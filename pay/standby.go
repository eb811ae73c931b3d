package pay

import (
	"context"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/payment"
)

// StandbyConfig configures the channels a hidden service keeps funded in
// advance to the first hops of its rendezvous circuits.
type StandbyConfig struct {
	// Per is how many funded channels are kept ready for each relay at
	// least (default 4). A relay whose channels are taken faster gets
	// more, up to MaxPer (default 4 × Per): three times as many as were
	// taken, on average, in one refill interval (Every) over the last
	// four, so that a busy service's stock rarely runs dry between two
	// refills (the intervals are exponential: one in twenty is three
	// times the mean).
	Per, MaxPer int
	// Every is the mean time between two refills (default 2 min), drawn
	// from an exponential distribution — a Poisson process, unrelated to
	// introductions — the first within Every/4 of Run's start, or at the
	// service's start: the first time Stock names relays. A refill
	// funds the channels missing, each after a random pause of up to Gap
	// (default 10 s), each through an isolation of its own, one for every
	// relay before a second for any.
	Every, Gap time.Duration
	// MinLife is the least lifetime a standby channel must have left to
	// be opened (default 12 h); older ones are not opened and come back
	// as refunds after their expiry.
	MinLife time.Duration
}

// Standby defaults.
const (
	DefaultStandbyPer     = 4
	DefaultStandbyEvery   = 2 * time.Minute
	DefaultStandbyGap     = 10 * time.Second
	DefaultStandbyMinLife = 12 * time.Hour
)

func (c *StandbyConfig) defaults() {
	if c.Per <= 0 {
		c.Per = DefaultStandbyPer
	}
	if c.MaxPer < c.Per {
		c.MaxPer = 4 * c.Per
	}
	if c.Every <= 0 {
		c.Every = DefaultStandbyEvery
	}
	if c.Gap <= 0 {
		c.Gap = DefaultStandbyGap
	}
	if c.MinLife <= 0 {
		c.MinLife = DefaultStandbyMinLife
	}
}

// Standby pays a hidden service's rendezvous circuits with channels
// funded in advance (specs/05-payment.md §7.13), so that the service
// makes no mint request in answer to an introduction: its rendezvous
// circuits run guard → vanguard → rendezvous point, the first two from
// sets fixed for days (Stock names them), and each rendezvous circuit
// opens a standby channel on each of those hops — a CHANNEL_OPEN needs
// no mint — while the rendezvous point is left unpaid: it bills the
// spliced traffic to the client's circuit (06). Refills come at the times
// of a Poisson process (Run), never in answer to a circuit.
type Standby struct {
	c      *Channels
	cfg    StandbyConfig
	window uint64
	onPaid func(msat uint64)

	mu     sync.Mutex // guards the fields below
	stocks map[string]*stock
	more   chan struct{}   // closed and replaced when a channel is added
	have   map[uint64]bool // book counters of the channels stocked so far
	named  bool            // Stock has named relays: the service started

	start chan struct{} // ready when Stock first names relays (1 slot)
}

// stock is the standby channels to one relay.
type stock struct {
	relay    RelayTerms
	capacity uint64
	wanted   bool // refilled; relays no longer named are not
	ready    []standbyChannel
	taken    []time.Time // when circuits took its channels, within the horizon
}

// takenHorizon is how many refill intervals of takes size a stock.
const takenHorizon = 4

// target is how many channels st keeps ready at now: Per, or three times
// the takes of a mean refill interval over the horizon, up to MaxPer. It
// forgets takes older than the horizon.
func (st *stock) target(cfg StandbyConfig, now time.Time) int {
	since := now.Add(-takenHorizon * cfg.Every)
	i := 0
	for i < len(st.taken) && st.taken[i].Before(since) {
		i++
	}
	st.taken = st.taken[i:]
	want := (3*len(st.taken) + takenHorizon - 1) / takenHorizon
	return min(max(cfg.Per, want), cfg.MaxPer)
}

// standbyChannel is a booked, funded channel not opened on any circuit.
type standbyChannel struct {
	ch      *payment.Channel
	key     *btcec.PrivateKey
	counter uint64 // in the book
}

// NewStandby returns the standby channels of c, sized for window bytes of
// traffic (0: DefaultWindow) like Paths'. It starts nothing.
func NewStandby(c *Channels, cfg StandbyConfig, window uint64) *Standby {
	cfg.defaults()
	cfg.MinLife = min(cfg.MinLife, c.cfg.Lifetime/2) // else every channel funded would be dropped at once
	if window == 0 {
		window = DefaultWindow
	}
	return &Standby{c: c, cfg: cfg, window: window, stocks: map[string]*stock{}, more: make(chan struct{}),
		have: map[uint64]bool{}, start: make(chan struct{}, 1)}
}

func keyName(k *btcec.PublicKey) string { return hex.EncodeToString(k.SerializeCompressed()) }

// Stock names the relays to keep standby channels for: the service's
// guards and vanguards. Free relays and relays the wallet cannot pay are
// left out. Relays named before and not now are no longer refilled; what
// they have ready stays usable. Standby channels of the book that no
// circuit took — funded before a restart — are stocked again first
// (restore). It makes no mint request.
func (s *Standby) Stock(relays []*descriptor.Relay) {
	s.restore()
	ks, err := s.c.cfg.Wallet.Keyset()
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stocks {
		st.wanted = false
	}
	for _, d := range relays {
		if d == nil || Free(d) {
			continue
		}
		if r, err := RelayOf(d, s.c.cfg.Wallet.MintURL(), s.c.cfg.Wallet.Unit(), ks.ID); err == nil {
			s.wantLocked(r)
			s.startLocked()
		}
	}
}

// startLocked has Run fill at once (after Fill's random pause) the first
// time relays are named: at the service's start, before any
// introduction, rather than at the next time of the Poisson process. mu
// is held.
func (s *Standby) startLocked() {
	if s.named {
		return
	}
	s.named = true
	s.start <- struct{}{}
}

// wantLocked marks relay r to be refilled; mu is held.
func (s *Standby) wantLocked(r RelayTerms) *stock {
	k := keyName(r.ReceiverKey)
	st := s.stocks[k]
	if st == nil {
		st = &stock{}
		s.stocks[k] = st
	}
	st.relay, st.wanted = r, true
	st.capacity, _ = s.c.Capacity(r.Terms.Owed(s.window+r.Terms.PrepayBytes), r)
	return st
}

// Pay says how to pay a rendezvous circuit (hidden.Config's Standby):
// every paid hop but the last from its standby channels, the last hop —
// the rendezvous point, which bills the splice to the client's circuit —
// not at all. A hop whose relay has none ready waits, on its free
// allowance, for the next refill; Pay names it to be refilled.
func (s *Standby) Pay(path []*descriptor.Relay) (client.PayConfig, error) {
	ks, err := s.c.cfg.Wallet.Keyset()
	if err != nil {
		return client.PayConfig{}, err
	}
	cfg := client.PayConfig{Hops: make([]client.HopPayment, len(path)), OnPaid: s.onPaid}
	for i, d := range path[:max(len(path)-1, 0)] {
		if d == nil || Free(d) {
			continue
		}
		r, err := RelayOf(d, s.c.cfg.Wallet.MintURL(), s.c.cfg.Wallet.Unit(), ks.ID)
		if err != nil {
			return client.PayConfig{}, err
		}
		s.mu.Lock()
		st := s.stocks[keyName(r.ReceiverKey)]
		if st == nil || !st.wanted {
			st = s.wantLocked(r)
		}
		capacity := st.capacity
		s.mu.Unlock()
		next := func() client.HopPayer { return &hopPayer{c: s.c, relay: r, capacity: capacity, standby: s} }
		cfg.Hops[i] = client.HopPayment{Payer: next(), Terms: r.Terms, Next: next}
	}
	return cfg, nil
}

// Stocked reports whether a standby channel to relay d is ready, or d is
// free: a rendezvous circuit through it needs no refill (hidden.Config
// prefers such guards and vanguards). It makes no mint request.
func (s *Standby) Stocked(d *descriptor.Relay) bool {
	if Free(d) {
		return true
	}
	ks, err := s.c.cfg.Wallet.Keyset()
	if err != nil {
		return false
	}
	r, err := RelayOf(d, s.c.cfg.Wallet.MintURL(), s.c.cfg.Wallet.Unit(), ks.ID)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stocks[keyName(r.ReceiverKey)]
	if st == nil {
		return false
	}
	st.ready = s.usable(st.ready)
	return len(st.ready) > 0
}

// take returns a standby channel to the relay of key, waiting for a
// refill while none is ready (or until ctx ends). It makes no mint
// request.
func (s *Standby) take(ctx context.Context, key *btcec.PublicKey) (standbyChannel, error) {
	k := keyName(key)
	for {
		s.mu.Lock()
		more := s.more
		if st := s.stocks[k]; st != nil {
			st.ready = s.usable(st.ready)
			if len(st.ready) > 0 {
				c := st.ready[0]
				st.ready = st.ready[1:]
				st.taken = append(st.taken, s.c.cfg.Now())
				s.mu.Unlock()
				// Booked before the relay can see it: a restart then
				// never offers it to another circuit.
				if err := s.c.markOpened(c.counter); err != nil {
					s.add(key, c)
					return standbyChannel{}, err
				}
				return c, nil
			}
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return standbyChannel{}, ctx.Err()
		case <-more:
		}
	}
}

// usable drops the channels with less than MinLife left; mu is held.
func (s *Standby) usable(ready []standbyChannel) []standbyChannel {
	least := uint64(s.c.cfg.Now().Add(s.cfg.MinLife).Unix())
	out := ready[:0]
	for _, c := range ready {
		if c.ch.Params().ExpiryTime >= least {
			out = append(out, c)
		}
	}
	return out
}

// Ready is how many standby channels are ready, over every relay.
func (s *Standby) Ready() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.stocks {
		st.ready = s.usable(st.ready)
		n += len(st.ready)
	}
	return n
}

// Fill funds the standby channels missing now, each through an
// isolation of its own and after a random pause of up to gap (0: none),
// and returns how many it funded. It calls the mint only if some were
// missing. Run fills at random times; call Fill directly only where that
// time says nothing (at start, or in tests).
func (s *Standby) Fill(ctx context.Context, gap time.Duration) (int, error) {
	s.restore()
	funded := 0
	for limit := s.capacityLimit(); funded < limit; {
		r, capacity, ok := s.missing()
		if !ok {
			break
		}
		if gap > 0 {
			if err := sleep(ctx, rand.N(gap)); err != nil {
				return funded, err
			}
		}
		ch, key, counter, err := s.c.newChannel(r, capacity, true)
		if err != nil {
			return funded, err
		}
		s.mu.Lock()
		s.have[counter] = true // restore must not stock it too
		s.mu.Unlock()
		if err := s.c.fundResult(s.c.fund(ctx, ch, counter)); err != nil {
			s.mu.Lock()
			delete(s.have, counter) // a recovery may complete its swap: restore stocks it then
			s.mu.Unlock()
			return funded, err
		}
		s.add(r.ReceiverKey, standbyChannel{ch: ch, key: key, counter: counter})
		funded++
	}
	return funded, nil
}

// capacityLimit bounds the fundings of one Fill: a full stock for every
// relay.
func (s *Standby) capacityLimit() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.MaxPer * len(s.stocks)
}

// missing picks, at random, a wanted relay with fewer channels ready than
// its target, among those with the fewest: a fill gives every relay one
// channel before it gives any a second, so that a rendezvous circuit
// soon after the service's start, which needs one on each of its first
// hops, waits for one round of the fill and not for all of it.
func (s *Standby) missing() (RelayTerms, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.c.cfg.Now()
	for _, st := range s.stocks {
		st.ready = s.usable(st.ready)
	}
	short := fewestReady(s.stocks, func(st *stock) int { return st.target(s.cfg, now) })
	if len(short) == 0 {
		return RelayTerms{}, 0, false
	}
	st := short[rand.N(len(short))]
	return st.relay, st.capacity, true
}

// fewestReady returns the wanted stocks with fewer channels ready than
// their target and, among them, the fewest.
func fewestReady(stocks map[string]*stock, target func(*stock) int) []*stock {
	var short []*stock
	for _, st := range stocks {
		if !st.wanted || len(st.ready) >= target(st) {
			continue
		}
		if len(short) > 0 && len(st.ready) < len(short[0].ready) {
			short = short[:0]
		}
		if len(short) == 0 || len(st.ready) == len(short[0].ready) {
			short = append(short, st)
		}
	}
	return short
}

func (s *Standby) add(key *btcec.PublicKey, c standbyChannel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stocks[keyName(key)]; st != nil {
		st.ready = append(st.ready, c)
	}
	close(s.more)
	s.more = make(chan struct{})
}

// run refills at the times of a Poisson process of mean cfg.Every, and
// when Stock first names relays, until ctx ends.
func (s *Standby) run(ctx context.Context, failed func(error)) {
	wait := rand.N(s.cfg.Every/4 + 1)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.start:
			t.Stop()
		}
		if _, err := s.Fill(ctx, s.cfg.Gap); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			failed(err)
		}
		wait = poolGap(s.cfg.Every)
	}
}

// restore stocks the standby channels of the book that are funded and
// that no circuit took: those funded before a restart, and those whose
// funding swap a wallet recovery completed. Their relays need not be
// named yet: Stock or Pay names them, and take finds them by key. Those
// with less than MinLife left are not offered (usable); like the stock
// of a relay no longer named, they stay booked and come back as refunds
// after their expiry (Channels.Settle) — a 2-of-2 lock the relay never
// saw cannot be undone sooner. It makes no mint request.
func (s *Standby) restore() {
	booked := s.c.bookedStandby(func(counter uint64) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.have[counter]
	})
	if len(booked) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range booked {
		if s.have[b.counter] {
			continue
		}
		s.have[b.counter] = true
		k := keyName(b.receiver)
		st := s.stocks[k]
		if st == nil {
			st = &stock{} // not refilled until its relay is named
			s.stocks[k] = st
		}
		st.ready = s.usable(append(st.ready, b.standbyChannel))
	}
	close(s.more)
	s.more = make(chan struct{})
}
