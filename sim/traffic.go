package sim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

// trip is one fetch: its circuit's path and how it went.
type trip struct {
	client int
	path   []peer.ID
	dial   time.Duration // to a connected stream on a new circuit
	fetch  time.Duration
	ok     bool
}

// traffic has every client fetch FetchSize bytes Fetches times, each on a
// circuit of its own (a new isolation key), and then measures the
// adversary's share and the anonymity sets of the paths.
func (n *Network) traffic(ctx context.Context, rep *Report) {
	var (
		mu    sync.Mutex
		trips []trip
		wg    sync.WaitGroup
	)
	for _, c := range n.clients {
		wg.Go(func() {
			for i := range n.cfg.Fetches {
				t := n.fetchOnce(ctx, c, i)
				mu.Lock()
				trips = append(trips, t)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var dials, fetches []time.Duration
	ok := 0
	for _, t := range trips {
		if t.dial > 0 {
			dials = append(dials, t.dial)
		}
		if t.ok {
			ok++
			fetches = append(fetches, t.fetch)
		}
	}
	rep.Dial, rep.Fetch = distOf(dials), distOf(fetches)
	rep.samples.dials, rep.samples.fetches = dials, fetches
	rep.FetchSuccess = round3(ratio(ok, len(trips)))
	n.judge(rep, trips)
}

// fetchOnce dials the web through c's circuit manager with a fresh
// isolation key and fetches; the circuit's path is the one that appeared
// in the manager's circuits during the dial.
func (n *Network) fetchOnce(ctx context.Context, c *simClient, i int) trip {
	t := trip{client: c.idx}
	before := pathSet(c.mgr.Circuits())
	key := client.NewIsolationKey(fmt.Sprintf("fetch-%d", i))
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	conn, err := c.mgr.DialIsolated(dctx, key, "tcp", WebAddr)
	if err != nil {
		return t
	}
	defer conn.Close()
	// Dial returns before the circuit is built (optimistic data): the
	// circuit and its build time show once the fetch has gone through.
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	t.ok = fetch(conn, n.cfg.FetchSize) == nil
	t.fetch = time.Since(start)
	t.dial = t.fetch
	for p, k := range pathSet(c.mgr.Circuits()) {
		if k > before[p] {
			t.path = splitPath(p)
		}
	}
	return t
}

// pathSet counts the circuits by path.
func pathSet(cs []client.CircuitInfo) map[string]int {
	out := map[string]int{}
	for _, c := range cs {
		ids := make([]string, len(c.Hops))
		for i, h := range c.Hops {
			ids[i] = h.String()
		}
		out[strings.Join(ids, ",")]++
	}
	return out
}

func splitPath(p string) []peer.ID {
	var out []peer.ID
	for _, s := range strings.Split(p, ",") {
		id, err := peer.Decode(s)
		if err != nil {
			return nil
		}
		out = append(out, id)
	}
	return out
}

// judge measures the Sybils' share of the clients' guards and paths, and
// for every path the share of clients whose view could have produced it.
func (n *Network) judge(rep *Report, trips []trip) {
	sybil := map[peer.ID]bool{}
	relays := n.live()
	exitRelays := 0
	for _, r := range relays {
		if r.sybil {
			sybil[r.ID()] = true
		}
		if r.roles.Has(descriptor.RoleExit) {
			exitRelays++
		}
	}
	a := &rep.Adversary
	a.Relays = len(sybil)
	a.RelayShare = round3(ratio(len(sybil), len(relays)))
	a.ExitRelayShare = round3(ratio(len(sybil), exitRelays)) // every Sybil is an exit
	views := make([]map[peer.ID]bool, len(n.clients))
	guards := make([]map[peer.ID]bool, len(n.clients))
	slots, bad, seen := 0, 0, 0
	for i, c := range n.clients {
		views[i] = c.view()
		guards[i] = map[peer.ID]bool{}
		hit := false
		for _, g := range c.mgr.Guards() {
			guards[i][g] = true
			slots++
			if sybil[g] {
				bad++
				hit = true
			}
		}
		if hit {
			seen++
		}
	}
	a.GuardShare = round3(ratio(bad, slots))
	a.ClientsSeen = round3(ratio(seen, len(n.clients)))
	var paths, exits, any, e2e int
	var sets, gsets []float64
	for _, t := range trips {
		if len(t.path) == 0 {
			continue
		}
		paths++
		first, last := sybil[t.path[0]], sybil[t.path[len(t.path)-1]]
		if last {
			exits++
		}
		if first && last {
			e2e++
		}
		for _, id := range t.path {
			if sybil[id] {
				any++
				break
			}
		}
		v, g := anonymitySet(t.path, views, guards)
		sets = append(sets, ratio(v, len(views)))
		gsets = append(gsets, ratio(g, len(views)))
	}
	rep.Paths = paths
	a.ExitShare = round3(ratio(exits, paths))
	a.PathShare = round3(ratio(any, paths))
	a.EndToEnd = round3(ratio(e2e, paths))
	rep.AnonymitySet = round3(mean(sets))
	rep.AnonymitySetGuard = round3(mean(gsets))
	rep.AnonymitySetMinShare = round3(minOf(sets))
}
