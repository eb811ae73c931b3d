package sim

import (
	"context"
	"math"
	"time"
)

// churnTick is how often churn events are drawn.
const churnTick = time.Minute

// churn, until ctx ends, makes relays leave and crash, and new ones
// join, at the configured rates per relay-hour. The bootstrap relays stay
// (as Tor's directory authorities and fallbacks are long-lived), and so
// do Sybils: an adversary keeps its relays up.
func (n *Network) churn(ctx context.Context, rep *Report, clock *relayClock) {
	cfg := n.cfg
	if cfg.LeaveRate == 0 && cfg.CrashRate == 0 && cfg.JoinRate == 0 {
		return
	}
	perTick := churnTick.Hours()
	t := time.NewTicker(churnTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, r := range n.live() {
			if r.idx < bootstrapRelays || r.sybil {
				continue
			}
			n.mu.Lock()
			x := n.rnd.Float64()
			n.mu.Unlock()
			switch {
			case x < cfg.CrashRate*perTick:
				go n.remove(r, true)
				rep.Churn.Crashed++
			case x < (cfg.CrashRate+cfg.LeaveRate)*perTick:
				go n.remove(r, false)
				rep.Churn.Left++
			}
		}
		n.mu.Lock()
		joins := n.poisson(cfg.JoinRate * float64(cfg.Relays) * perTick)
		n.mu.Unlock()
		for range joins {
			if _, err := n.addRelay(false); err == nil {
				rep.Churn.Joined++
			}
		}
		clock.add(len(n.live()), time.Now())
	}
}

// poisson draws from a Poisson distribution of mean m (Knuth's method;
// m is small here). Called with n.mu held.
func (n *Network) poisson(m float64) int {
	l, k, p := math.Exp(-m), 0, 1.0
	for {
		p *= n.rnd.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
