package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A relay behind a cone NAT keeps a direct connection to the public
// relays of its view (specs/02-dht.md §Reachability). Its previous hop in
// a circuit is always one of them: it has no guard role, and a path holds
// at most one relay behind a NAT. A previous hop that already holds a
// connection to it opens its channel on that connection at once, where a
// first contact would cost a relayed connection and a hole punch (8 to 17
// round trips, measured). The relay dials out from behind its NAT, which
// needs no punch; the NAT keeps the mappings open while the connections
// carry traffic (QUIC keep-alives).
const (
	// DefaultKeptLinks bounds the connections kept
	// (RelayConfig.KeptLinks): on a network with more public relays than
	// this, the relay keeps a choice of its own among them, and a previous
	// hop outside it still reaches the relay by a hole punch.
	DefaultKeptLinks = 512
	// keptLinksEvery is how often the connections are looked at again;
	// keptLinksFirst, how often in the relay's first minute, while its
	// view fills.
	keptLinksEvery = time.Minute
	keptLinksFirst = 10 * time.Second
	// keptLinksDials is how many dials run at once.
	keptLinksDials = 4
	// keptLinkTimeout bounds one dial.
	keptLinkTimeout = 15 * time.Second
	// keptLinkTag protects the kept connections from the connection
	// manager's trimming.
	keptLinkTag = "obol-kept-link"
)

// keptChoice is the choice of at most max public relays among cands
// that the relay self keeps connections to: all of them if they are no
// more, else those first when ranked by SHA-256 of self's peer ID and
// theirs. Each relay keeps its own choice, the same from round to round,
// so that relays behind NATs do not all hold connections to the same
// public relays; and any relay can tell, from its own view, which public
// relays a relay behind a NAT keeps connections to (a callback's
// forwarder, 02 §Callbacks).
func keptChoice(self peer.ID, cands []peer.AddrInfo, max int) []peer.AddrInfo {
	if len(cands) <= max {
		return cands
	}
	type ranked struct {
		ai   peer.AddrInfo
		rank [32]byte
	}
	rs := make([]ranked, len(cands))
	for i, ai := range cands {
		rs[i] = ranked{ai, sha256.Sum256([]byte(self + ai.ID))}
	}
	slices.SortFunc(rs, func(a, b ranked) int { return bytes.Compare(a.rank[:], b.rank[:]) })
	out := make([]peer.AddrInfo, max)
	for i := range out {
		out[i] = rs[i].ai
	}
	return out
}

type linkKeeper struct {
	h          host.Host
	max        int // connections kept at most
	candidates func() []peer.AddrInfo
	log        *slog.Logger
	kept       map[peer.ID]bool // protected in the connection manager
}

// run keeps the connections until ctx ends, then unprotects them.
func (k *linkKeeper) run(ctx context.Context) {
	k.kept = map[peer.ID]bool{}
	defer func() {
		for id := range k.kept {
			k.h.ConnManager().Unprotect(id, keptLinkTag)
		}
	}()
	logged := -1
	for i := 0; ; i++ {
		if n := k.round(ctx); n != logged && ctx.Err() == nil {
			k.log.Info("keeping direct connections to public relays", "relays", n)
			logged = n
		}
		every := keptLinksEvery
		if i < int(keptLinksEvery/keptLinksFirst) {
			every = keptLinksFirst
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// round dials the candidates it is not connected to, up to k.max of
// them, and returns how many it is connected to.
func (k *linkKeeper) round(ctx context.Context) int {
	cands := keptChoice(k.h.ID(), k.candidates(), k.max)
	want := make(map[peer.ID]bool, len(cands))
	var (
		mu        sync.Mutex
		connected int
		wg        sync.WaitGroup
	)
	sem := make(chan struct{}, keptLinksDials)
	for _, ai := range cands {
		want[ai.ID] = true
		if k.h.Network().Connectedness(ai.ID) == network.Connected {
			mu.Lock()
			connected++
			mu.Unlock()
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return 0
		}
		wg.Go(func() {
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, keptLinkTimeout)
			defer cancel()
			if err := k.h.Connect(network.WithForceDirectDial(dctx, "kept link"), ai); err == nil {
				mu.Lock()
				connected++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for id := range want {
		if !k.kept[id] {
			k.h.ConnManager().Protect(id, keptLinkTag)
			k.kept[id] = true
		}
	}
	for id := range k.kept {
		if !want[id] {
			k.h.ConnManager().Unprotect(id, keptLinkTag)
			delete(k.kept, id)
		}
	}
	return connected
}
