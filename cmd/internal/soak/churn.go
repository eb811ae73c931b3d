package soak

import (
	"context"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"syscall"
	"time"
)

// ChurnEvent is one relay stopped and one started in its place.
type ChurnEvent struct {
	At     time.Time `json:"at"`
	Relay  string    `json:"relay"`  // the relay stopped
	Signal string    `json:"signal"` // SIGKILL or SIGTERM
	// Settled: the stopped relay logged that it settled its channels
	// (SIGTERM only).
	Settled bool `json:"settled"`
	// Action is "restart" (the same relay on its data directory) or
	// "fresh" (a new relay with a new directory and identity).
	Action  string `json:"action"`
	Started string `json:"started"` // the relay started
	// PublishedAfter is how long after its start the started relay
	// published its descriptor, in seconds.
	PublishedAfter float64 `json:"published_after_s"`
	Err            string  `json:"error,omitempty"`
}

// churner stops a random non-bootstrap relay every interval and starts
// one in its place.
type churner struct {
	n   *network
	log *slog.Logger

	mu     sync.Mutex
	events []ChurnEvent
}

// run churns until stop ends; a relay being replaced then is still
// started and waited for, within ctx.
func (c *churner) run(ctx, stop context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop.Done():
			return
		case <-t.C:
		}
		ev := c.once(ctx)
		c.log.Info("churn", "stopped", ev.Relay, "signal", ev.Signal, "action", ev.Action, "started", ev.Started,
			"published_after_s", ev.PublishedAfter, "err", ev.Err)
		c.mu.Lock()
		c.events = append(c.events, ev)
		c.mu.Unlock()
	}
}

// once stops one relay, SIGKILL or SIGTERM at random, and either starts
// it again on its data directory or starts a fresh relay of the same kind.
func (c *churner) once(ctx context.Context) ChurnEvent {
	var candidates []*relay
	for _, r := range c.n.running() {
		if !r.boot {
			candidates = append(candidates, r)
		}
	}
	if len(candidates) == 0 {
		return ChurnEvent{At: time.Now(), Err: "no relay to churn"}
	}
	r := candidates[mrand.N(len(candidates))]
	ev := ChurnEvent{At: time.Now(), Relay: r.name, Signal: "SIGKILL", Action: "restart"}
	if mrand.N(2) == 0 {
		ev.Signal = "SIGTERM"
		r.p.signal(syscall.SIGTERM, stopWithin)
		ev.Settled = r.p.log.seen(msgSettled)
	}
	if r.p.running() {
		r.p.kill()
	}
	started := r
	if mrand.N(2) == 0 {
		ev.Action = "fresh"
		c.n.mu.Lock()
		r.abandoned = !ev.Settled
		c.n.mu.Unlock()
		started = c.n.newRelay(r.exit)
	}
	ev.Started = started.name
	t0 := time.Now()
	err := c.n.start(ctx, started, c.n.boot)
	if err == nil {
		err = started.p.waitLog(ctx, msgPublished, publishWithin)
	}
	if err != nil {
		ev.Err = err.Error()
		if !started.p.running() {
			c.n.mu.Lock()
			started.abandoned = true // settled, if need be, at the end
			c.n.mu.Unlock()
		}
		return ev
	}
	ev.PublishedAfter = time.Since(t0).Seconds()
	return ev
}

// kills are the times relays were stopped.
func (c *churner) kills() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ts []time.Time
	for _, e := range c.events {
		if e.Relay != "" {
			ts = append(ts, e.At)
		}
	}
	return ts
}

func (c *churner) all() []ChurnEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ChurnEvent(nil), c.events...)
}
