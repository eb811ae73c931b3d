package dht

import (
	"context"
	"errors"
	"time"
)

// SignFunc signs the relay's descriptor afresh with sequence number seq,
// publish time now and its configured lifetime.
type SignFunc func(seq uint64, now time.Time) ([]byte, error)

// Publisher keeps a relay's descriptor in the DHT. kad-dht neither
// republishes values nor hands them to nodes that join later, so the
// publisher puts the descriptor on start, whenever Changed is called, and
// every Interval, which must be well under the descriptor's lifetime and
// the DHT's record age. Each put carries a new, higher sequence number.
// Before each put it reconnects to bootstrap peers that have left the
// routing table, so that after a network partition heals the put reaches
// the other side again.
type Publisher struct {
	node     *Node
	sign     SignFunc
	interval time.Duration
	changed  chan struct{}
	also     func(context.Context, []byte) error // set before Run
	lastSeq  uint64                              // owned by Run
}

// NewPublisher returns a publisher for node that republishes every
// interval. It starts nothing; call Run.
func NewPublisher(node *Node, sign SignFunc, interval time.Duration) *Publisher {
	return &Publisher{node: node, sign: sign, interval: interval, changed: make(chan struct{}, 1)}
}

// Changed asks for a republish now, e.g. after an onion key rotation.
func (p *Publisher) Changed() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// AlsoPublish hands every record the publisher signs to fn too, after
// the DHT put: a relay spreads its descriptor on the view's gossip topic
// (package view) as well as in the DHT. A failure of fn is logged, and
// does not count as a failed publish. Call it before Run.
func (p *Publisher) AlsoPublish(fn func(ctx context.Context, rec []byte) error) { p.also = fn }

// alsoTimeout bounds the AlsoPublish hook.
const alsoTimeout = 10 * time.Second

// rejoinTimeout bounds reconnecting to bootstrap peers before a put: a
// peer across a partition costs a publish this much at most.
const rejoinTimeout = 5 * time.Second

// retryDelay is how soon a failed put is tried again.
func (p *Publisher) retryDelay() time.Duration { return min(p.interval/4, 5*time.Second) }

// Run publishes until ctx ends. It returns nil when ctx is cancelled.
func (p *Publisher) Run(ctx context.Context) error {
	if p.interval <= 0 {
		return errors.New("dht: publisher interval must be positive")
	}
	if err := p.node.WaitReady(ctx); err != nil {
		return nil
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-p.changed:
		}
		next := p.interval
		err := p.publishOnce(ctx)
		if errors.Is(err, ErrUnreachable) {
			// Not a relay until peers confirm an address; the
			// reachability check calls Changed when they do.
			p.node.cfg.Logger.Debug("descriptor not published: no address confirmed reachable")
		} else if err != nil && ctx.Err() == nil {
			p.node.cfg.Logger.Warn("descriptor publish failed; retrying", "err", err)
			next = p.retryDelay()
		}
		t.Reset(next)
	}
}

// publishOnce signs with the next sequence number and puts the record.
// Sequence numbers come from the clock in milliseconds (or last+1), so a
// restarted relay still supersedes its previous records.
func (p *Publisher) publishOnce(ctx context.Context) error {
	now := p.node.cfg.Now()
	seq := max(p.lastSeq+1, uint64(now.UnixMilli()))
	rec, err := p.sign(seq, now)
	if err != nil {
		return err
	}
	p.lastSeq = seq
	rctx, cancel := context.WithTimeout(ctx, rejoinTimeout)
	p.node.rejoin(rctx)
	cancel()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = p.node.PutRelay(pctx, rec)
	cancel()
	if p.also != nil {
		actx, cancel := context.WithTimeout(ctx, alsoTimeout)
		if aerr := p.also(actx, rec); aerr != nil && ctx.Err() == nil {
			p.node.cfg.Logger.Info("descriptor not gossiped; the DHT put stands", "err", aerr)
		}
		cancel()
	}
	return err
}
