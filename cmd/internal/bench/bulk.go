package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/obolnet/obol/circuit/client"
)

// Names of the bulk scenarios; each runs with 1 and with Parallel streams.
const (
	BulkDirect  = "direct TCP"
	BulkChain   = "plain chain"
	BulkCircuit = "circuit"
)

// bulkName names a scenario with its number of streams.
func bulkName(base string, streams int) string { return fmt.Sprintf("%s ×%d", base, streams) }

// opener opens the i-th of a round's parallel streams.
type opener func(ctx context.Context, i int) (io.ReadWriteCloser, error)

// measureBulk moves BulkBytes over each of 1 and Parallel streams at
// once, for each scenario, round after round (scenarios alternate within
// a round), and keeps every round's aggregate rate.
func (b *run) measureBulk(ctx context.Context) error {
	path := b.net.FirstN(b.cfg.Hops)
	circs := make([]*client.Circuit, b.cfg.Parallel)
	for i := range circs {
		c, err := client.Build(ctx, b.net.client, path)
		if err != nil {
			return fmt.Errorf("bench: bulk circuit: %w", err)
		}
		defer c.Close()
		circs[i] = c
	}
	type scenario struct {
		name     string
		baseline bool
		open     opener
	}
	scenarios := []scenario{
		{BulkDirect, true, func(ctx context.Context, _ int) (io.ReadWriteCloser, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", b.srv.addr())
		}},
		{BulkChain, true, func(ctx context.Context, _ int) (io.ReadWriteCloser, error) { return b.chain.open(ctx) }},
		{BulkCircuit, false, func(ctx context.Context, i int) (io.ReadWriteCloser, error) {
			return circs[i].Dial(ctx, "127.0.0.1", b.srv.port)
		}},
	}
	for _, streams := range []int{1, b.cfg.Parallel} {
		rates := make([][]float64, len(scenarios))
		for round := range b.cfg.BulkRounds {
			for j := range scenarios {
				k := (j + round) % len(scenarios) // alternate which goes first
				s := scenarios[k]
				b.step(fmt.Sprintf("bulk: %s (round %d/%d)", bulkName(s.name, streams), round+1, b.cfg.BulkRounds))
				r, err := b.bulkRound(ctx, s.open, streams)
				if err != nil {
					return fmt.Errorf("bench: bulk, %s: %w", bulkName(s.name, streams), err)
				}
				rates[k] = append(rates[k], r)
			}
		}
		for k, s := range scenarios {
			b.rep.Bulk = append(b.rep.Bulk, Throughput{Name: bulkName(s.name, streams), Baseline: s.baseline,
				Streams: streams, Rounds: rates[k], MBps: quantile(rates[k], 0.5)})
		}
	}
	return nil
}

// bulkRound fetches BulkBytes over each of n streams at once and returns
// the aggregate rate in MB/s.
func (b *run) bulkRound(ctx context.Context, open opener, n int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- b.fetchOn(ctx, open, i, b.cfg.BulkBytes)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(n) * float64(b.cfg.BulkBytes) / took.Seconds() / 1e6, nil
}

// fetchOn fetches size bytes on the i-th stream open gives.
func (b *run) fetchOn(ctx context.Context, open opener, i, size int) error {
	s, err := open(ctx, i)
	if err != nil {
		return err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	return fetch(s, size)
}
