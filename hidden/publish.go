package hidden

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// What the records of one publication show a DHT node. The records of the
// current and the next period, and the replicas of each, share no clear-
// text field but the format's constants: each period's blinded key has
// its own encrypted revision counter (descriptor.BlindedKey.Revision),
// and every record its own publication time and expiry, drawn apart.
const (
	// maxPublishJitter bounds how far before the publication a record's
	// published time may lie.
	maxPublishJitter = time.Hour
	// storeAttempts is how many relays one replica is offered to.
	storeAttempts = 3
)

// recordParams returns the parameters of every replica of the current
// and the next period for a publication at now: for each period's blinded
// key a revision above the last one published under it, and for each
// record a published time and an expiry of its own. It holds no lock;
// steps is the listener's, under l.mu.
func recordParams(key func(descriptor.Period) *descriptor.BlindedKey, now time.Time, period, lifetime time.Duration,
	steps map[uint64]uint64, rng *mrand.Rand) ([]descriptor.HSParams, error) {
	cur := descriptor.PeriodAt(now, period)
	periods := []descriptor.Period{cur, cur.Next()}
	for n := range steps {
		if n < cur.Num {
			delete(steps, n)
		}
	}
	n := len(periods) * descriptor.HSReplicas
	pubSpan := min(maxPublishJitter, lifetime/4)
	expSpan := lifetime / 8
	life := min(lifetime, descriptor.MaxHSLifetime-pubSpan)
	pubs := distinctOffsets(rng, n, int64(pubSpan/time.Second))
	exps := distinctOffsets(rng, n, int64(expSpan/time.Second))
	var out []descriptor.HSParams
	for i, p := range periods {
		x := descriptor.RevisionStep(p, now)
		if last, ok := steps[p.Num]; ok && x <= last {
			x = last + 1 // twice in one second: still higher
		}
		steps[p.Num] = x
		rev, err := key(p).Revision(x)
		if err != nil {
			return nil, err
		}
		for r := range uint8(descriptor.HSReplicas) {
			j := i*descriptor.HSReplicas + int(r)
			out = append(out, descriptor.HSParams{Period: p, Replica: r, Revision: rev,
				Published: now.Add(-time.Duration(pubs[j]) * time.Second),
				Expires:   now.Add(life - time.Duration(exps[j])*time.Second)})
		}
	}
	return out, nil
}

// startSteps are the revision steps a listener starts from: those of its
// start, so that its first records carry a revision above them. Steps
// count seconds: a service restarted within the second of its last
// publication would otherwise sign the revision it signed then, and
// between records of one revision DHT nodes select the later publish
// time, drawn back at random, so its old records, with the old intro
// points, would often stay until its next republication.
func startSteps(now time.Time, period time.Duration) map[uint64]uint64 {
	cur := descriptor.PeriodAt(now, period)
	steps := map[uint64]uint64{}
	for _, p := range []descriptor.Period{cur, cur.Next()} {
		steps[p.Num] = descriptor.RevisionStep(p, now)
	}
	return steps
}

// maxRevisionBumps bounds how often one replica is signed again above a
// record the DHT refused to replace.
const maxRevisionBumps = 3

// resign signs replica p again with a revision above every one this
// listener has signed for p's period.
func (l *Listener) resign(p *descriptor.HSParams, content *descriptor.HSContent) ([]byte, error) {
	l.mu.Lock()
	x := max(l.steps[p.Period.Num], descriptor.RevisionStep(p.Period, l.cfg.Now())) + 1
	l.steps[p.Period.Num] = x
	l.mu.Unlock()
	rev, err := descriptor.BlindPrivateKey(l.cfg.Key, p.Period).Revision(x)
	if err != nil {
		return nil, err
	}
	p.Revision = rev
	return descriptor.SignHS(rand.Reader, l.cfg.Key, content, *p)
}

// distinctOffsets draws n offsets in [0, span) seconds, all different if
// span allows.
func distinctOffsets(rng *mrand.Rand, n int, span int64) []int64 {
	out := make([]int64, 0, n)
	seen := map[int64]bool{}
	for len(out) < n {
		if span <= 0 {
			out = append(out, 0)
			continue
		}
		v := rng.Int64N(span)
		if seen[v] && span >= int64(2*n) {
			continue
		}
		seen[v] = true
		out = append(out, v)
	}
	return out
}

// newRand is a generator seeded from crypto/rand: the jitter must not be
// predictable from the process's other random draws.
func newRand() *mrand.Rand {
	var seed [32]byte
	rand.Read(seed[:])
	return mrand.New(mrand.NewChaCha8(seed))
}

// publish stores descriptors of the current and the next period, each
// replica through its own circuit, so that no relay can link the periods.
// It succeeds if one replica of the current period was stored; each
// replica is tried at up to storeAttempts relays.
func (l *Listener) publish(ctx context.Context) error {
	content := &descriptor.HSContent{Clients: l.cfg.AuthorizedClients, PoW: l.pow.params()}
	for _, ip := range l.currentIntros() {
		content.Intros = append(content.Intros, ip.point())
	}
	if len(content.Intros) == 0 {
		return fmt.Errorf("hidden: no intro point to publish")
	}
	now := l.cfg.Now()
	l.mu.Lock()
	blinded := func(p descriptor.Period) *descriptor.BlindedKey { return descriptor.BlindPrivateKey(l.cfg.Key, p) }
	params, err := recordParams(blinded, now, l.cfg.Period, l.cfg.Lifetime, l.steps, newRand())
	l.mu.Unlock()
	if err != nil {
		return err
	}
	type result struct {
		current bool
		err     error
	}
	results := make(chan result, len(params))
	for _, p := range params {
		rec, err := descriptor.SignHS(rand.Reader, l.cfg.Key, content, p)
		if err != nil {
			return err
		}
		current := p.Period == params[0].Period
		l.work.Add(1)
		go func() {
			defer l.work.Done()
			// A relay that cannot store it now (its DHT puts wait on a
			// peer that went away, say) is not the end of this replica:
			// another relay is tried.
			var err error
			tried := map[peer.ID]bool{}
			for attempt, bumps := 0, 0; attempt < storeAttempts; attempt++ {
				if err = l.cfg.storeDescriptor(l.runCtx, rec, tried); err == nil || l.runCtx.Err() != nil {
					break
				}
				if errors.Is(err, errStoreRejected) && bumps < maxRevisionBumps {
					// The DHT holds a record of this replica at least as
					// new: one that a run before this one signed within
					// this very second (steps count seconds), or a
					// republication racing this one. Sign above it and
					// offer it anywhere again.
					bumps++
					attempt--
					clear(tried)
					if rec, err = l.resign(&p, content); err != nil {
						break
					}
				}
			}
			if err == nil {
				l.mu.Lock()
				l.stored++
				l.mu.Unlock()
			}
			results <- result{current, err}
		}()
	}
	// Return once one current replica is stored; the rest go on.
	var lastErr error
	for range params {
		select {
		case r := <-results:
			if r.err != nil {
				lastErr = r.err
			}
			if r.err == nil && r.current {
				l.mu.Lock()
				l.published++
				l.mu.Unlock()
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.cfg.Logger.Warn("descriptor not stored")
	return fmt.Errorf("hidden: descriptor could not be stored (%v): %w", lastErr, ErrNoRelays)
}
