package sim

import (
	"context"
	"time"
)

// churnTick is how often churn happens.
const churnTick = time.Minute

// churn, until ctx ends, makes relays leave and crash, and new ones
// join, at the configured rates per relay-hour. Counts follow the rates
// exactly (fractions carry over from one tick to the next); which relays
// go is drawn at random. The bootstrap relays stay (as Tor's directory
// authorities and fallbacks are long-lived), and so do Sybils: an
// adversary keeps its relays up.
func (n *Network) churn(ctx context.Context, rep *Report, clock *relayClock) {
	cfg := n.cfg
	if cfg.LeaveRate == 0 && cfg.CrashRate == 0 && cfg.JoinRate == 0 {
		return
	}
	perTick := churnTick.Hours()
	var leaves, crashes, joins float64
	t := time.NewTicker(churnTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		live := n.live()
		leaves += cfg.LeaveRate * float64(len(live)) * perTick
		crashes += cfg.CrashRate * float64(len(live)) * perTick
		joins += cfg.JoinRate * float64(cfg.Relays) * perTick
		for ; crashes >= 1; crashes-- {
			if r := n.victim(); r != nil {
				n.remove(r, true)
				rep.Churn.Crashed++
			}
		}
		for ; leaves >= 1; leaves-- {
			if r := n.victim(); r != nil {
				n.remove(r, false)
				rep.Churn.Left++
			}
		}
		for ; joins >= 1; joins-- {
			if _, err := n.addRelay(false); err == nil {
				rep.Churn.Joined++
			}
		}
		clock.add(len(n.live()), time.Now())
	}
}

// victim picks a live honest relay that may go, or nil.
func (n *Network) victim() *relay {
	var cands []*relay
	for _, r := range n.live() {
		if r.idx >= bootstrapRelays && !r.sybil {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return cands[n.rnd.IntN(len(cands))]
}
