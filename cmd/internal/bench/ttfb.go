package bench

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/obolnet/obol/circuit/client"
)

// Names of the time-to-first-byte scenarios.
const (
	TTFBDirect    = "direct TCP"
	TTFBChain     = "plain chain"
	TTFBBuildDial = "fresh circuit (BuildDial)"
	TTFBBuildThen = "fresh circuit (Build+Dial)"
	TTFBPrebuilt  = "pre-built circuit"
)

// ttfbSize is the size of the answer the first byte of which is timed.
const ttfbSize = 1024

// measureTTFB times, n times each, from nothing to the first byte of a
// 1 KiB answer, round-robin over the scenarios so that all see the same
// load on the machine.
func (b *run) measureTTFB(ctx context.Context) error {
	path := b.net.FirstN(b.cfg.Hops)
	pre, err := client.Build(ctx, b.net.client, path)
	if err != nil {
		return fmt.Errorf("bench: pre-built circuit: %w", err)
	}
	defer pre.Close()
	scenarios := []struct {
		name     string
		baseline bool
		once     func(context.Context) (time.Duration, error)
	}{
		{TTFBDirect, true, b.ttfbDirect},
		{TTFBChain, true, b.ttfbChain},
		{TTFBBuildDial, false, func(ctx context.Context) (time.Duration, error) { return b.ttfbBuildDial(ctx, path) }},
		{TTFBBuildThen, false, func(ctx context.Context) (time.Duration, error) { return b.ttfbBuildThenDial(ctx, path) }},
		{TTFBPrebuilt, false, func(ctx context.Context) (time.Duration, error) { return b.ttfbPrebuilt(ctx, pre) }},
	}
	samples := make([][]float64, len(scenarios))
	for i := range b.cfg.TTFBSamples {
		for k, s := range scenarios {
			b.step(fmt.Sprintf("first byte: %s (%d/%d)", s.name, i+1, b.cfg.TTFBSamples))
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			d, err := s.once(sctx)
			cancel()
			if err != nil {
				return fmt.Errorf("bench: first byte, %s: %w", s.name, err)
			}
			samples[k] = append(samples[k], ms(d))
		}
	}
	for k, s := range scenarios {
		b.rep.TTFB = append(b.rep.TTFB, newSeries(s.name, s.baseline, samples[k]))
	}
	return nil
}

func (b *run) ttfbDirect(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", b.srv.addr())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.Write(request(ttfbSize)); err != nil {
		return 0, err
	}
	err = firstByte(conn)
	return time.Since(start), err
}

func (b *run) ttfbChain(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	s, err := b.chain.open(ctx)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if _, err := s.Write(request(ttfbSize)); err != nil {
		return 0, err
	}
	err = firstByte(s)
	return time.Since(start), err
}

func (b *run) ttfbBuildDial(ctx context.Context, path []client.Hop) (time.Duration, error) {
	start := time.Now()
	c, s, err := client.BuildDial(ctx, b.net.client, path, "127.0.0.1", b.srv.port, request(ttfbSize))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	err = firstByte(s)
	return time.Since(start), err
}

func (b *run) ttfbBuildThenDial(ctx context.Context, path []client.Hop) (time.Duration, error) {
	start := time.Now()
	c, err := client.Build(ctx, b.net.client, path)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	s, err := c.Dial(ctx, "127.0.0.1", b.srv.port)
	if err != nil {
		return 0, err
	}
	if _, err := s.Write(request(ttfbSize)); err != nil {
		return 0, err
	}
	err = firstByte(s)
	return time.Since(start), err
}

func (b *run) ttfbPrebuilt(ctx context.Context, c *client.Circuit) (time.Duration, error) {
	start := time.Now()
	s, err := c.Dial(ctx, "127.0.0.1", b.srv.port)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if _, err := s.Write(request(ttfbSize)); err != nil {
		return 0, err
	}
	err = firstByte(s)
	return time.Since(start), err
}
