package node

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
)

// natRole does what the class of a relay's NAT lets it do
// (specs/02-dht.md §Reachability):
//
//	public     serves as a hole-punch rendezvous (circuit relay v2 with
//	           tight limits) for relays behind cone NATs
//	cone       holds reservations at rendezvous among its bootstrap peers
//	           and publishes their /p2p-circuit addresses, without the
//	           guard role; the previous hop reaches it by DCUtR, or at
//	           once over a connection the relay keeps to it (linkKeeper)
//	symmetric  nothing: a hole punch cannot reach it, it does not publish
//	unknown    nothing yet
type natRole struct {
	h     host.Host
	cfg   RelayConfig
	reach *dht.Reach // set before run
	// view lists the relays of the relay's view, whose public ones are
	// the rendezvous it reserves at first; nil: its bootstrap relays only.
	view    func() []*descriptor.Relay
	wake    chan struct{} // a new verdict or class; buffered
	onAddrs func()        // the rendezvous addresses changed

	mu  sync.Mutex        // guards rsv
	rsv *dht.Reservations // kept while the class is cone; else nil
}

func newNATRole(h host.Host, cfg RelayConfig, onAddrs func()) *natRole {
	return &natRole{h: h, cfg: cfg, wake: make(chan struct{}, 1), onAddrs: onAddrs}
}

// changed wakes run to look at the class again.
func (n *natRole) changed() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// circuitAddrs are the rendezvous addresses to publish: nil unless the
// relay is behind a cone NAT and holds a reservation.
func (n *natRole) circuitAddrs() []ma.Multiaddr {
	n.mu.Lock()
	rsv := n.rsv
	n.mu.Unlock()
	if rsv == nil {
		return nil
	}
	return rsv.Addrs()
}

// rendezvousCandidates are the relays of the view that publish direct
// addresses only (their reachability confirmed; every such relay serves
// as a rendezvous), other than this one.
func (n *natRole) rendezvousCandidates() []peer.AddrInfo { return n.publicRelays(false) }

// publicRelays are the relays of the view that publish direct addresses
// only, this one among them if withSelf.
func (n *natRole) publicRelays(withSelf bool) []peer.AddrInfo {
	if n.view == nil {
		return nil
	}
	var out []peer.AddrInfo
	for _, r := range n.view() {
		if (r.PeerID == n.h.ID() && !withSelf) || len(r.Addrs) == 0 {
			continue
		}
		ai := peer.AddrInfo{ID: r.PeerID}
		for _, b := range r.Addrs {
			a, err := ma.NewMultiaddrBytes(b)
			if err != nil {
				ai.Addrs = nil
				break
			}
			if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
				ai.Addrs = nil // itself behind a rendezvous
				break
			}
			ai.Addrs = append(ai.Addrs, a)
		}
		if len(ai.Addrs) > 0 {
			out = append(out, ai)
		}
	}
	return out
}

// run follows the class until ctx ends, and stops what it started.
func (n *natRole) run(ctx context.Context) {
	var (
		service     *relay.Relay
		stopForward func() // callbacks passed on, beside service
		stopCone    context.CancelFunc
		wg          sync.WaitGroup
	)
	defer func() {
		if stopCone != nil {
			stopCone()
		}
		wg.Wait()
		if service != nil {
			stopForward()
			service.Close()
		}
	}()
	log := n.cfg.Logger
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		class := n.reach.NAT()
		if class == dht.NATPublic && service == nil {
			var err error
			if service, err = dht.StartRendezvous(n.h, n.cfg.ReachPrivate); err != nil {
				log.Warn("hole-punch rendezvous not started", "err", err)
			} else {
				stopForward = dht.ServeCallbackRendezvous(n.h)
				log.Info("serving as a hole-punch rendezvous for relays behind NAT")
			}
		}
		// A relay that skips the check publishes its addresses as they
		// are, never rendezvous ones.
		if class == dht.NATCone && stopCone == nil && len(n.cfg.Bootstrap) > 0 && !n.cfg.SkipReachCheck {
			rsv, err := dht.NewReservations(n.h, dht.ReservationsConfig{
				Candidates: n.rendezvousCandidates, Rendezvous: n.cfg.Bootstrap, Changed: n.onAddrs, Logger: log})
			if err != nil {
				log.Warn("rendezvous reservations not started", "err", err)
				continue
			}
			n.mu.Lock()
			n.rsv = rsv
			n.mu.Unlock()
			log.Info("behind a cone NAT: taking part through hole-punch rendezvous, not as a guard")
			var cctx context.Context
			cctx, stopCone = context.WithCancel(ctx)
			wg.Go(func() { _ = rsv.Run(cctx) })
			stopCallbacks := dht.ServeCallbacks(n.h, dht.CallbackConfig{FromRendezvous: rsv.Holds,
				RelayAddrs: n.relayAddrs, AllowPrivate: n.cfg.ReachPrivate, Logger: log})
			wg.Go(func() { <-cctx.Done(); stopCallbacks() })
			if kept := n.cfg.KeptLinks; kept >= 0 {
				if kept == 0 {
					kept = DefaultKeptLinks
				}
				keep := &linkKeeper{h: n.h, max: kept, candidates: n.rendezvousCandidates, log: log}
				wg.Go(func() { keep.run(cctx) })
			}
		}
		if class != dht.NATCone && stopCone != nil {
			n.mu.Lock()
			n.rsv = nil
			n.mu.Unlock()
			stopCone()
			wg.Wait()
			stopCone = nil
			n.onAddrs()
		}
	}
}

// relayAddrs are the published addresses of p if p is a public relay of
// the view (a callback's dial back, 02 §Callbacks), else nil.
func (n *natRole) relayAddrs(p peer.ID) []ma.Multiaddr {
	for _, ai := range n.publicRelays(false) {
		if ai.ID == p {
			return ai.Addrs
		}
	}
	return nil
}

// callbackForwarders are the public relays that the relay behind a NAT
// target keeps connections to, as this relay's view ranks them
// (keptChoice), and that this relay holds a direct connection to: each
// can pass a callback on to target at once.
func (n *natRole) callbackForwarders(target peer.ID) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, ai := range keptChoice(target, n.publicRelays(true), DefaultKeptLinks) {
		if ai.ID == n.h.ID() {
			continue
		}
		if n.h.Network().Connectedness(ai.ID) == network.Connected { // directly
			out = append(out, ai)
		}
	}
	return out
}
