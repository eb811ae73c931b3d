package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// measureBulk fetches BulkBytes with curl, in turn through one circuit
// and directly, and takes the peak resident set of the proxy and the
// relays over the circuit's transfers.
func (b *nsRun) measureBulk(ctx context.Context) error {
	if _, err := b.curl(ctx, "bulk", 1024, false); err != nil { // builds the circuit
		return fmt.Errorf("bench: bulk circuit: %w", err)
	}
	procs := append([]*proc{b.proxy}, b.relays...)
	cpu0 := make([]time.Duration, len(b.relays))
	for i, p := range procs {
		if err := p.resetPeak(); err != nil {
			return fmt.Errorf("bench: reset the peak resident set of %s: %w", p.name, err)
		}
		if i > 0 {
			cpu0[i-1], _ = p.cpuTime()
		}
	}
	var circ, direct, wide []float64
	for i := range b.cfg.BulkRounds {
		b.step(fmt.Sprintf("bulk: circuit (%d/%d)", i+1, b.cfg.BulkRounds))
		r, err := b.curl(ctx, "bulk", b.cfg.BulkBytes, false)
		if err != nil {
			return fmt.Errorf("bench: bulk through the circuit: %w", err)
		}
		circ = append(circ, r.rateMBps())
		b.step(fmt.Sprintf("bulk: direct TCP (%d/%d)", i+1, b.cfg.BulkRounds))
		if r, err = b.curl(ctx, "", b.cfg.BulkBytes, true); err != nil {
			return fmt.Errorf("bench: bulk over direct TCP: %w", err)
		}
		direct = append(direct, r.rateMBps())
		b.step(fmt.Sprintf("bulk: direct TCP, wide send buffer (%d/%d)", i+1, b.cfg.BulkRounds))
		if r, err = b.curlWideSendBuffer(ctx); err != nil {
			return fmt.Errorf("bench: bulk over direct TCP with a wide send buffer: %w", err)
		}
		wide = append(wide, r.rateMBps())
	}
	b.rep.Bulk = append(b.rep.Bulk,
		Throughput{Name: NetnsBulk, Streams: 1, Rounds: circ, MBps: quantile(circ, 0.5)},
		Throughput{Name: NetnsBulkTCP, Baseline: true, Streams: 1, Rounds: direct, MBps: quantile(direct, 0.5)},
		Throughput{Name: NetnsBulkTCPWide, Baseline: true, Streams: 1, Rounds: wide, MBps: quantile(wide, 0.5)})
	return b.readMemory(cpu0)
}

// wideSendBuffer is the largest send buffer the server's kernel may give
// a TCP socket in the wide baseline.
const wideSendBuffer = 32 << 20

// curlWideSendBuffer fetches BulkBytes directly while the server's
// namespace lets a TCP socket's send buffer grow to wideSendBuffer, since
// the send buffer bounds what TCP keeps in flight on a long path.
func (b *nsRun) curlWideSendBuffer(ctx context.Context) (curlResult, error) {
	if err := b.setServerWmem(ctx, fmt.Sprintf("4096 16384 %d", wideSendBuffer)); err != nil {
		return curlResult{}, err
	}
	r, err := b.curl(ctx, "", b.cfg.BulkBytes, true)
	if err2 := b.setServerWmem(context.Background(), b.wmem); err == nil {
		err = err2
	}
	return r, err
}

// setServerWmem sets net.ipv4.tcp_wmem in the server's namespace; the
// kernel reads its maximum whenever it grows a socket's send buffer.
func (b *nsRun) setServerWmem(ctx context.Context, v string) error {
	out, err := b.net.Command(ctx, nodeServer, "sysctl", "-q", "-w", "net.ipv4.tcp_wmem="+v).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: sysctl tcp_wmem in the server's namespace: %v: %s", err, out)
	}
	return nil
}

// readMemory records the peak resident sets since they were reset, and
// which relays carried the bulk circuit: the Hops relays that used the
// most CPU since cpu0.
func (b *nsRun) readMemory(cpu0 []time.Duration) error {
	m := &NetnsMemory{}
	var err error
	if m.ProxyPeakMiB, err = b.proxy.peakRSSMiB(); err != nil {
		return err
	}
	if m.ProxyFileMiB, err = b.proxy.fileRSSMiB(); err != nil {
		return err
	}
	used := make([]time.Duration, len(b.relays))
	for i, p := range b.relays {
		peak, err := p.peakRSSMiB()
		if err != nil {
			return err
		}
		m.RelayPeaksMiB = append(m.RelayPeaksMiB, peak)
		c, err := p.cpuTime()
		if err != nil {
			return err
		}
		used[i] = c - cpu0[i]
	}
	order := make([]int, len(b.relays))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return int(used[y] - used[x]) })
	m.PathRelays = order[:b.cfg.Hops]
	var path, files []float64
	for _, i := range m.PathRelays {
		path = append(path, m.RelayPeaksMiB[i])
		m.PathRelayCPUs = append(m.PathRelayCPUs, used[i].Seconds())
		f, err := b.relays[i].fileRSSMiB()
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	m.PathRelayMedianMiB = quantile(path, 0.5)
	m.PathRelayFileMiB = quantile(files, 0.5)
	m.RelayMedianMiB = quantile(m.RelayPeaksMiB, 0.5)
	b.rep.Memory = m
	return nil
}

// measureParallel fetches BulkBytes/2 on each of Parallel circuits at
// once, in turn with the same on one circuit, each round timed from the
// start of the first curl to the end of the last.
func (b *nsRun) measureParallel(ctx context.Context) error {
	if b.cfg.Parallel < 2 {
		return nil
	}
	size := max(b.cfg.BulkBytes/2, 1)
	users := make([]string, b.cfg.Parallel)
	for i := range users {
		users[i] = fmt.Sprintf("parallel-%d", i)
		if _, err := b.curl(ctx, users[i], 1024, false); err != nil { // builds its circuit
			return fmt.Errorf("bench: parallel circuits: %w", err)
		}
	}
	var one, many []float64
	for i := range b.cfg.BulkRounds {
		for _, n := range []int{1, b.cfg.Parallel} {
			b.step(fmt.Sprintf("bulk: %d circuit(s) at once (%d/%d)", n, i+1, b.cfg.BulkRounds))
			rate, err := b.parallelRound(ctx, users[:n], size)
			if err != nil {
				return err
			}
			if n == 1 {
				one = append(one, rate)
			} else {
				many = append(many, rate)
			}
		}
	}
	b.rep.Parallel = &NetnsParallel{Circuits: b.cfg.Parallel, BytesEach: size, OneRounds: one, ManyRounds: many,
		OneMBps: quantile(one, 0.5), ManyMBps: quantile(many, 0.5)}
	return nil
}

// parallelRound runs one curl per user at once, each fetching size
// bytes, and returns their aggregate rate.
func (b *nsRun) parallelRound(ctx context.Context, users []string, size int) (float64, error) {
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	start := time.Now()
	for i, u := range users {
		wg.Go(func() { _, errs[i] = b.curl(ctx, u, size, false) })
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("bench: parallel bulk: %w", err)
	}
	return float64(len(users)) * float64(size) / took.Seconds() / 1e6, nil
}
