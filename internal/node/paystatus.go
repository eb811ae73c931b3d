package node

import (
	"sync"
	"sync/atomic"

	"github.com/obolnet/obol/internal/status"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/router"
)

// Payment channel states shown on the status page and in metrics.
const (
	ChannelOpen    = "open"    // takes balance updates
	ChannelClosing = "closing" // closed to updates, not yet settled at the mint
	ChannelSettled = "settled" // the relay's close is done
)

// RelayPayments is the status.PaymentSource of a paid relay: earnings and
// channel states from its ledger, paused circuits from its meter, and
// settled amounts as its settler reports them (pass OnSettled as
// router.SettlerConfig.OnSettled).
type RelayPayments struct {
	Ledger *payment.Ledger
	Meter  *router.PaidMeter // may be nil

	settled atomic.Uint64 // msat

	mu      sync.Mutex                   // guards seen and retired
	seen    map[payment.ChannelID]uint64 // msat credited per channel in the ledger
	retired uint64                       // msat of channels since pruned from the ledger
}

// OnSettled counts a settlement's amount.
func (p *RelayPayments) OnSettled(s router.Settlement) {
	if s.Outcome != router.SettledClosed {
		return
	}
	if ch, ok := p.Ledger.Channel(s.Channel); ok {
		p.settled.Add(s.Amount * pay.MsatPer(ch.Params().Unit))
	}
}

// Payments implements status.PaymentSource. Earnings only grow: the
// balance of a channel pruned from the ledger stays counted.
func (p *RelayPayments) Payments() status.Payments {
	out := status.Payments{SettledMsat: p.settled.Load(), Channels: map[string]int{}}
	now := map[payment.ChannelID]uint64{}
	for _, c := range p.Ledger.Channels() {
		if ch, ok := p.Ledger.Channel(c.ID); ok {
			now[c.ID] = c.Balance * pay.MsatPer(ch.Params().Unit)
		}
		switch {
		case c.Settled:
			out.Channels[ChannelSettled]++
		case c.Closed:
			out.Channels[ChannelClosing]++
		default:
			out.Channels[ChannelOpen]++
		}
	}
	out.EarnedMsat = p.earned(now)
	if p.Meter != nil {
		out.Paused = p.Meter.Pauses()
	}
	return out
}

// earned folds the channels that left the ledger into retired and returns
// the total.
func (p *RelayPayments) earned(now map[payment.ChannelID]uint64) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, msat := range p.seen {
		if _, ok := now[id]; !ok {
			p.retired += msat
		}
	}
	p.seen = now
	total := p.retired
	for _, msat := range now {
		total += msat
	}
	return total
}

// PayerPayments is the status.PaymentSource of a client that pays, such
// as a *pay.Payer.
type PayerPayments struct {
	P interface {
		Spent() uint64     // msat paid
		Reclaimed() uint64 // msat brought back by settlement
	}
}

// Payments implements status.PaymentSource.
func (p PayerPayments) Payments() status.Payments {
	return status.Payments{SpentMsat: p.P.Spent(), SettledMsat: p.P.Reclaimed()}
}
