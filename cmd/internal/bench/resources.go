package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
)

// Names of the CPU scenarios.
const (
	CPURelay = "relay (middle hop)"
	CPUChain = "plain chain hop"
)

// measureResources measures, on plain loopback links, the CPU time a
// middle relay in a process of its own spends per GiB forwarded (against
// a plain chain's middle host in the same process), then its memory per
// open idle circuit.
func (b *run) measureResources(ctx context.Context) error {
	b.step("relay child: starting")
	ch, err := startChild(b.cfg.Child())
	if err != nil {
		return err
	}
	defer ch.Close()
	nw, err := startNetwork(2, Link{}, nil)
	if err != nil {
		return err
	}
	defer nw.Close()
	hop, err := ch.relayHop()
	if err != nil {
		return err
	}
	nw.Dir.Set(hop.Peer.ID, hop.Peer.Addrs)
	if err := ch.setNext("next", peer.AddrInfo{ID: nw.Relays[1].Host.ID(), Addrs: nw.Relays[1].Addrs}); err != nil {
		return err
	}
	if err := b.relayCPU(ctx, nw, ch, hop); err != nil {
		return err
	}
	if err := b.chainCPU(ctx, ch); err != nil {
		return err
	}
	return b.memory(ctx, nw, ch, hop)
}

// relayCPU moves CPUBytes through relay 0, the child, relay 1.
func (b *run) relayCPU(ctx context.Context, nw *testnet, ch *child, hop client.Hop) error {
	b.step("relay CPU: circuit through the relay child")
	path := []client.Hop{nw.Relays[0].Hop(), hop, nw.Relays[1].Hop()}
	c, err := client.Build(ctx, nw.client, path)
	if err != nil {
		return fmt.Errorf("bench: circuit through the relay child: %w", err)
	}
	defer c.Close()
	return b.cpuOf(ch, CPURelay, false, func() (io.ReadWriteCloser, error) {
		return c.Dial(ctx, "127.0.0.1", b.srv.port)
	})
}

// chainCPU moves CPUBytes through a plain chain whose middle host is the
// child's forwarder.
func (b *run) chainCPU(ctx context.Context, ch *child) error {
	b.step("relay CPU: plain chain through the relay child")
	first, err := newHost()
	if err != nil {
		return err
	}
	defer first.Close()
	last, err := newHost()
	if err != nil {
		return err
	}
	defer last.Close()
	cl, err := newHost()
	if err != nil {
		return err
	}
	defer cl.Close()
	mid, err := multiaddrs(ch.info.ChainAddrs)
	if err != nil {
		return err
	}
	first.Peerstore().AddAddrs(ch.info.Chain, mid, time.Hour)
	first.SetStreamHandler(chainProto, func(s network.Stream) { forward(first, s, ch.info.Chain, "") })
	last.SetStreamHandler(chainProto, func(s network.Stream) { forward(last, s, "", b.srv.addr()) })
	if err := ch.setNext("chainnext", peer.AddrInfo{ID: last.ID(), Addrs: last.Addrs()}); err != nil {
		return err
	}
	cl.Peerstore().AddAddrs(first.ID(), first.Addrs(), time.Hour)
	return b.cpuOf(ch, CPUChain, true, func() (io.ReadWriteCloser, error) {
		return cl.NewStream(ctx, first.ID(), chainProto)
	})
}

// cpuOf fetches CPUBytes over one stream and records the child's CPU time
// per GiB.
func (b *run) cpuOf(ch *child, name string, baseline bool, open func() (io.ReadWriteCloser, error)) error {
	s0, err := ch.stats()
	if err != nil {
		return err
	}
	if err := ch.resetPeak(); err != nil {
		return err
	}
	s, err := open()
	if err != nil {
		return fmt.Errorf("bench: %s: %w", name, err)
	}
	err = fetch(s, b.cfg.CPUBytes)
	s.Close()
	if err != nil {
		return fmt.Errorf("bench: %s: %w", name, err)
	}
	s1, err := ch.stats()
	if err != nil {
		return err
	}
	cpu := (s1.cpu - s0.cpu).Seconds()
	b.rep.CPU = append(b.rep.CPU, CPUCost{Name: name, Baseline: baseline, Bytes: int64(b.cfg.CPUBytes),
		CPUSeconds: cpu, SecPerGiB: cpu / (float64(b.cfg.CPUBytes) / (1 << 30)), PeakRSSMiB: float64(s1.peakKiB) / 1024})
	return nil
}

// memory opens MemCircuits two-hop circuits whose first hop is the child
// and reports the child's growth per circuit.
func (b *run) memory(ctx context.Context, nw *testnet, ch *child, hop client.Hop) error {
	path := []client.Hop{hop, nw.Relays[1].Hop()}
	s0, err := ch.stats()
	if err != nil {
		return err
	}
	start := time.Now()
	open, err := b.openMany(ctx, nw, path)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	if err != nil {
		return err
	}
	took := time.Since(start)
	s1, err := ch.stats()
	if err != nil {
		return err
	}
	if s1.circuits < len(open) {
		return fmt.Errorf("bench: relay child holds %d circuits, want %d", s1.circuits, len(open))
	}
	n := float64(len(open))
	b.rep.Memory = &Memory{Circuits: len(open), RSSPerCircuit: float64(s1.rssKiB-s0.rssKiB) * 1024 / n,
		HeapPerCircuit: float64(s1.heap-s0.heap) / n, RSSBeforeMiB: float64(s0.rssKiB) / 1024,
		RSSAfterMiB: float64(s1.rssKiB) / 1024, BuildsPerSecond: n / took.Seconds()}
	return nil
}

// openMany builds MemCircuits circuits along path with four builders.
func (b *run) openMany(ctx context.Context, nw *testnet, path []client.Hop) ([]*client.Circuit, error) {
	var mu sync.Mutex
	var open []*client.Circuit
	var first error
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.cfg.MemCircuits; i += 4 {
				if i%100 == 0 {
					b.step(fmt.Sprintf("memory: %d/%d circuits", i, b.cfg.MemCircuits))
				}
				bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				c, err := client.Build(bctx, nw.client, path)
				cancel()
				mu.Lock()
				if err != nil {
					first = cmpErr(first, err)
				} else {
					open = append(open, c)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return open, fmt.Errorf("bench: memory, building circuits: %w", first)
	}
	return open, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
