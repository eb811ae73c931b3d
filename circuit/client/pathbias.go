package client

import (
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Path bias, after Tor's (path-spec §7; specs/10-client.md §4.6). A guard
// that fails the circuits it does not like — those whose later hops are
// not its accomplices', say — pushes its client onto the paths it does
// like while looking merely unreliable. The client counts, per guard, the
// circuits it tried to build through the guard once the guard was
// reached and those that were built, and the streams it tried on the
// guard's circuits and those that the exit answered (a connect or a
// refusal: either travelled back through the guard). Failures caused by
// later hops count against the guard too: on an honest network they are
// few, and the thresholds leave room for them.
//
//	counts ──(enough of them)──► judged: rate ≥ notice ──► fine
//	                                     rate < notice ──► logged once (Info)
//	                                     rate < warn   ──► logged once (Warn)
//	                                     rate < extreme──► logged (Warn) and disabled:
//	                                                       never used or chosen again
//	                                                       until its lifetime ends
//
// Counts are halved once they reach the scale thresholds, so that the
// rates follow the guard's recent behaviour.

// pathBias is one guard's counts; fractions come from the halving.
type pathBias struct {
	Attempts float64 `json:"attempts,omitempty"` // builds sent through the guard
	Built    float64 `json:"built,omitempty"`    // of which were built
	Streams  float64 `json:"streams,omitempty"`  // streams tried on its circuits
	Answered float64 `json:"answered,omitempty"` // of which the exit answered
	Level    int     `json:"level,omitempty"`    // the worst verdict logged
}

// biasParams are the thresholds of path bias.
type biasParams struct {
	minCircs, scaleCircs     float64 // circuits before judging; halve at
	notice, warn, extreme    float64 // build success rates
	minStreams, scaleStreams float64
	useNotice, useExtreme    float64 // stream success rates
}

// defaultBias are Tor's defaults (pb_mincircs, pb_noticepct, ...).
var defaultBias = biasParams{
	minCircs: 150, scaleCircs: 300, notice: 0.70, warn: 0.50, extreme: 0.30,
	minStreams: 20, scaleStreams: 100, useNotice: 0.80, useExtreme: 0.60,
}

// A biasVerdict is how a guard's rates compare with the thresholds.
type biasVerdict int

const (
	biasFine biasVerdict = iota
	biasNotice
	biasWarn
	biasExtreme
)

func (b *pathBias) build(ok bool, p biasParams) {
	b.Attempts++
	if ok {
		b.Built++
	}
	if b.Attempts >= p.scaleCircs {
		b.Attempts, b.Built = b.Attempts/2, b.Built/2
	}
}

func (b *pathBias) stream(ok bool, p biasParams) {
	b.Streams++
	if ok {
		b.Answered++
	}
	if b.Streams >= p.scaleStreams {
		b.Streams, b.Answered = b.Streams/2, b.Answered/2
	}
}

// verdict judges the counts: the worse of the build and stream verdicts.
func (b *pathBias) verdict(p biasParams) biasVerdict {
	v := biasFine
	if b.Attempts >= p.minCircs {
		switch r := b.Built / b.Attempts; {
		case r < p.extreme:
			v = biasExtreme
		case r < p.warn:
			v = biasWarn
		case r < p.notice:
			v = biasNotice
		}
	}
	if b.Streams >= p.minStreams {
		switch r := b.Answered / b.Streams; {
		case r < p.useExtreme:
			v = biasExtreme
		case r < p.useNotice:
			v = max(v, biasNotice)
		}
	}
	return v
}

// GuardStatus is what the client knows of one of its guards.
type GuardStatus struct {
	ID peer.ID
	// Circuits and Built count the builds sent through the guard and
	// those that succeeded; Streams and Answered the streams tried on its
	// circuits and those the exit answered. Counts are halved now and
	// then, so that they follow recent behaviour.
	Circuits, Built, Streams, Answered uint64
	// Disabled is when path bias took the guard out of use (zero if not).
	Disabled time.Time
}

// countBuild counts a build through guard, reached, that succeeded or
// not, and reports a worse verdict.
func (m *CircuitManager) countBuild(guard peer.ID, ok bool) {
	m.reportBias(m.guards.recordBias(guard, m.cfg.Now(), func(b *pathBias, p biasParams) { b.build(ok, p) }))
}

// countStream counts a stream tried on mc: the exit's answer, a connect or
// a refusal, is a success; a stream given up by the caller counts for
// nothing; any other failure (the circuit died, say) counts against the
// guard.
func (m *CircuitManager) countStream(ctx context.Context, mc *managed, err error) {
	var ee *EndError
	ok := err == nil || errors.As(err, &ee)
	if !ok && ctx.Err() != nil {
		return
	}
	m.reportBias(m.guards.recordBias(mc.path[0], m.cfg.Now(), func(b *pathBias, p biasParams) { b.stream(ok, p) }))
}

// countAnswer counts an optimistic stream's BEGIN once its fate is known:
// answered by the exit (CONNECTED or a refusal), or lost with its circuit.
func (m *CircuitManager) countAnswer(mc *managed, answered bool) {
	m.reportBias(m.guards.recordBias(mc.path[0], m.cfg.Now(), func(b *pathBias, p biasParams) { b.stream(answered, p) }))
}

// reportBias logs a guard's worse verdict: the guard and its counts,
// nothing about circuits or destinations.
func (m *CircuitManager) reportBias(ev biasEvent, worse bool) {
	if !worse {
		return
	}
	b := ev.bias
	args := []any{"guard", ev.id, "circuits", uint64(b.Attempts), "built", uint64(b.Built),
		"streams", uint64(b.Streams), "answered", uint64(b.Answered)}
	switch ev.verdict {
	case biasNotice:
		m.cfg.Logger.Info("client: a guard fails more circuits or streams than usual", args...)
	case biasWarn:
		m.cfg.Logger.Warn("client: a guard fails many circuits; it may be attacking this client, or the network is failing", args...)
	case biasExtreme:
		m.cfg.Logger.Warn("client: a guard fails so many circuits or streams that it is taken out of use; it may be attacking this client", args...)
	}
}

// GuardStatus describes the guards, those path bias disabled too.
func (m *CircuitManager) GuardStatus() []GuardStatus { return m.guards.status() }
