package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
)

// Flood is a relay with the router's default limits, in a process of its
// own, under a flood of circuits: Peers attacker peers each try to open
// Attempts idle one-hop circuits to it, 4 at a time, and keep every one
// they get; an honest client builds circuits to it before and during the
// flood. (Circuits of two hops or more would meet the next relay's cap on
// the one channel they share, and measure that instead.)
type Flood struct {
	Peers           int     `json:"peers"`
	Attempts        int     `json:"attempts_per_peer"`
	Accepted        int     `json:"accepted"`
	RelayCircuits   int     `json:"relay_circuits"`
	RefusedCreates  uint64  `json:"refused_creates"`  // over a peer's or the relay's rate
	RefusedCircuits uint64  `json:"refused_circuits"` // over a peer's, channel's or the relay's cap
	RSSBeforeMiB    float64 `json:"rss_before_MiB"`
	PeakRSSMiB      float64 `json:"peak_rss_MiB"`
	Took            float64 `json:"took_s"`
	QuietBuildMs    float64 `json:"quiet_build_median_ms"`
	FloodBuildMs    float64 `json:"flood_build_median_ms"`
	HonestTried     int     `json:"honest_tried"`
	HonestBuilt     int     `json:"honest_built"`
}

// floodWorkers is how many builds each attacker peer has under way.
const floodWorkers = 4

// measureFlood runs the flood scenario in a relay child of its own.
func (b *run) measureFlood(ctx context.Context) error {
	b.step("flood: starting a relay child with default limits")
	ch, err := startChild(b.cfg.Child())
	if err != nil {
		return err
	}
	defer ch.Close()
	nw, err := startNetwork(1, Link{}, nil)
	if err != nil {
		return err
	}
	defer nw.Close()
	ans, err := ch.ask("floodrelay")
	if err != nil {
		return err
	}
	var info floodInfo
	if err := json.Unmarshal([]byte(ans), &info); err != nil {
		return fmt.Errorf("bench: flood relay: %w", err)
	}
	addrs, err := multiaddrs(info.Addrs)
	if err != nil || len(info.Onion) != 32 {
		return fmt.Errorf("bench: flood relay info: bad addresses or onion key")
	}
	hop := client.Hop{Peer: peer.AddrInfo{ID: info.Relay, Addrs: addrs}, OnionKey: [32]byte(info.Onion)}
	path := []client.Hop{hop}
	f := &Flood{Peers: b.cfg.FloodPeers, Attempts: b.cfg.FloodAttempts}
	honest := max(b.cfg.BuildSamples, 10)

	quiet := buildTimes(ctx, nw.client, path, honest)
	f.QuietBuildMs = quantile(quiet, 0.5)
	s0, err := ch.stats()
	if err != nil {
		return err
	}
	f.RSSBeforeMiB = float64(s0.rssKiB) / 1024
	if err := ch.resetPeak(); err != nil {
		return err
	}

	b.step(fmt.Sprintf("flood: %d peers × %d circuits", f.Peers, f.Attempts))
	start := time.Now()
	var mu sync.Mutex
	var open []*client.Circuit
	var links []*link.Manager
	defer func() {
		for _, c := range open {
			c.Close()
		}
		for _, l := range links {
			l.Close()
		}
	}()
	var wg sync.WaitGroup
	for range f.Peers {
		h, err := newHost()
		if err != nil {
			return err
		}
		defer h.Close()
		lm := link.NewManager(h, link.Config{})
		lm.Start()
		links = append(links, lm)
		for w := range floodWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < f.Attempts; i += floodWorkers {
					bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					c, err := client.Build(bctx, lm, path)
					cancel()
					if err == nil {
						mu.Lock()
						open = append(open, c)
						mu.Unlock()
					}
				}
			}()
		}
	}
	flooding := make(chan struct{})
	go func() { wg.Wait(); close(flooding) }()
	var during []float64
	for f.HonestTried < honest && !closed(flooding) {
		d := buildTimes(ctx, nw.client, path, 1)
		f.HonestTried++
		f.HonestBuilt += len(d)
		during = append(during, d...)
	}
	<-flooding
	f.Took = time.Since(start).Seconds()
	f.FloodBuildMs = quantile(during, 0.5)
	f.Accepted = len(open)
	ans, err = ch.ask("floodstats")
	if err != nil {
		return err
	}
	if _, err := fmt.Sscan(ans, &f.RelayCircuits, &f.RefusedCreates, &f.RefusedCircuits); err != nil {
		return fmt.Errorf("bench: flood stats %q: %w", ans, err)
	}
	s1, err := ch.stats()
	if err != nil {
		return err
	}
	f.PeakRSSMiB = float64(s1.peakKiB) / 1024
	b.rep.Flood = f
	return nil
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// buildTimes builds n circuits along path one after another, closing
// each, and returns the times of those built, in ms.
func buildTimes(ctx context.Context, lm *link.Manager, path []client.Hop, n int) []float64 {
	var out []float64
	for range n {
		if d, err := buildOnce(ctx, lm, path); err == nil {
			out = append(out, ms(d))
		}
	}
	return out
}
