package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/errkind"
)

// Run keeps circuits prebuilt, expires idle ones and keeps the guard set
// until ctx ends; then it closes every circuit and returns nil once the
// goroutines it started have ended. Dial fails with ErrClosed after Run
// has returned. A manager runs once.
func (m *CircuitManager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running || m.closed {
		m.mu.Unlock()
		return errors.New("client: Run called twice")
	}
	m.running = true
	m.mu.Unlock()

	var wg sync.WaitGroup
	defer m.shutdown(&wg)
	t := time.NewTicker(m.cfg.Tick)
	defer t.Stop()
	for {
		m.housekeep(ctx, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// shutdown refuses new requests, waits for the prebuilds and closes every
// circuit.
func (m *CircuitManager) shutdown(wg *sync.WaitGroup) {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	wg.Wait()
	m.mu.Lock()
	circs := m.circs
	m.circs = nil
	m.mu.Unlock()
	for _, mc := range circs {
		mc.c.Close()
	}
	m.payments.Wait() // they end with their circuits
}

// housekeep drops dead and idle circuits, refreshes the guards and starts
// the prebuilds that are missing.
func (m *CircuitManager) housekeep(ctx context.Context, wg *sync.WaitGroup) {
	now := m.cfg.Now()
	m.expire(now)
	m.refreshGuards(m.candidates(now), now)
	for _, port := range m.prebuildsNeeded(now) {
		wg.Go(func() { m.prebuild(ctx, port) })
	}
}

// expire forgets closed circuits and closes idle ones and those without
// streams that can no longer be paid (PayConfig.Stale); what each carried
// is a capacity sample of its relays.
func (m *CircuitManager) expire(now time.Time) {
	m.mu.Lock()
	var closing, gone []*managed
	keep := m.circs[:0]
	for _, mc := range m.circs {
		switch {
		case mc.c.Err() != nil:
		case m.idle(mc, now), mc.c.NumStreams() == 0 && !mc.usable():
			closing = append(closing, mc)
		default:
			keep = append(keep, mc)
			continue
		}
		gone = append(gone, mc)
	}
	clear(m.circs[len(keep):])
	m.circs = keep
	m.failedRelays.expire(now)
	m.mu.Unlock()
	for _, mc := range closing {
		mc.c.Close()
	}
	for _, mc := range gone {
		bytes, active := mc.c.delivered()
		m.capacity.observe(mc.path, bytes, active)
		if err := mc.c.Err(); err != nil && !errors.Is(err, ErrCircuitClosed) {
			m.cfg.Logger.Debug("client: circuit lost", "why", lossCause(err), "used", mc.dirty)
		}
	}
}

// lossCause names why a circuit ended, for logs: a category, never the
// error's text, which may name relays.
func lossCause(err error) string {
	var d *circuit.DestroyedError
	switch {
	case errors.As(err, &d):
		return "destroyed by a relay: " + d.Reason.String()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timed out"
	}
	return "link lost or protocol error (" + errkind.Of(err).String() + ")"
}

// idle reports whether mc should close: used and without streams for
// IdleTimeout (or past its dirtiness and without streams), or prebuilt
// and never used for 10×IdleTimeout. mu is held.
func (m *CircuitManager) idle(mc *managed, now time.Time) bool {
	if !mc.dirty {
		return now.Sub(mc.built) >= 10*m.cfg.IdleTimeout
	}
	if mc.c.NumStreams() > 0 {
		mc.idleSince = time.Time{}
		return false
	}
	if mc.idleSince.IsZero() {
		mc.idleSince = now
	}
	return now.Sub(mc.idleSince) >= m.cfg.IdleTimeout || now.Sub(mc.firstUse) >= m.cfg.MaxDirtiness
}

// prebuildsNeeded returns a port for each prebuild to start now, and
// counts them as in flight.
func (m *CircuitManager) prebuildsNeeded(now time.Time) []uint16 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || now.Before(m.retryAt) {
		return nil
	}
	clean := m.prebuilding
	for _, mc := range m.circs {
		if !mc.dirty {
			clean++
		}
	}
	var ports []uint16
	for ; clean < m.cfg.Prebuilt; clean++ {
		ports = append(ports, m.cfg.PrebuildPorts[m.nextPort%len(m.cfg.PrebuildPorts)])
		m.nextPort++
		m.prebuilding++
	}
	return ports
}

// prebuild builds one clean circuit whose exit accepts port, with an exit
// no other circuit uses if one will do: each isolation key that takes a
// prebuilt circuit then gets an exit of its own.
func (m *CircuitManager) prebuild(ctx context.Context, port uint16) {
	m.mu.Lock()
	soft := m.exitsLocked()
	m.mu.Unlock()
	mc, _, err := m.build(ctx, port, soft, nil)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prebuilding--
	if err != nil {
		m.failures++
		backoff := min(100*time.Millisecond<<min(m.failures, 9), 30*time.Second)
		m.retryAt = m.cfg.Now().Add(backoff)
		log := m.cfg.Logger.Debug
		if m.failures == 1 && errors.Is(err, ErrNoPath) {
			log = m.cfg.Logger.Warn // once per run of failures: the user can act on it
		}
		log("client: cannot prebuild a circuit", "err", err, "retry_in", backoff)
		return
	}
	m.failures = 0
	if m.closed {
		mc.c.Close()
		return
	}
	m.circs = append(m.circs, mc)
}

// refreshGuards keeps the guard set (guardSet.refresh).
func (m *CircuitManager) refreshGuards(cands []*candidate, now time.Time) {
	var changed bool
	var err error
	m.randomness(func(r *rand.Rand) { changed, err = m.guards.refresh(cands, m.rules, r, now) })
	if err != nil {
		m.cfg.Logger.Warn("client: cannot save the guard set", "err", err)
	} else if changed {
		m.cfg.Logger.Info("client: guard set changed", "guards", len(m.guards.IDs()))
	}
}
