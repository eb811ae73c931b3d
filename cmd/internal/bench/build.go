package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
)

// measureBuild times building (until the last hop answered) circuits of
// 1 to MaxHops hops over open links, round-robin over the lengths.
func (b *run) measureBuild(ctx context.Context) error {
	samples := make([][]float64, b.cfg.MaxHops)
	for i := range b.cfg.BuildSamples {
		for h := 1; h <= b.cfg.MaxHops; h++ {
			b.step(fmt.Sprintf("build: %d hop(s) (%d/%d)", h, i+1, b.cfg.BuildSamples))
			d, err := buildOnce(ctx, b.net.client, b.net.FirstN(h))
			if err != nil {
				return fmt.Errorf("bench: build of %d hops: %w", h, err)
			}
			samples[h-1] = append(samples[h-1], ms(d))
		}
	}
	for h, s := range samples {
		b.rep.Build = append(b.rep.Build, BuildTime{Hops: h + 1, Median: quantile(s, 0.5), P90: quantile(s, 0.9),
			PathRTTms: b.pathRTT(h + 1)})
	}
	return nil
}

// buildOnce times one circuit's build along path from lm, and closes it.
func buildOnce(ctx context.Context, lm *link.Manager, path []client.Hop) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	c, err := client.Build(ctx, lm, path)
	if err != nil {
		return 0, err
	}
	d := time.Since(start)
	return d, c.Close()
}

// pathRTT is the emulated round trip from the client to the h-th hop:
// every link (client to first relay, relay to relay) delays each way.
func (b *run) pathRTT(h int) float64 { return ms(2 * time.Duration(h) * b.cfg.Link.Delay) }
