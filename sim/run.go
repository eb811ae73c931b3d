package sim

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Run builds the network cfg describes, runs its scenario and reports
// what it measured. The scenario, in order:
//
//  1. relays start (Sybils and withholding DHT nodes among them), join
//     through the first three and publish; clients join and sample;
//  2. discovery runs for Observe, under churn, while views are compared
//     and clients look relays up; its bytes are the discovery cost;
//  3. new clients sample back to back until their view is complete;
//  4. every client fetches from the simulated web on new circuits;
//  5. the clients' guards and paths are checked for the adversary's
//     share and for how many clients could have chosen each path.
//
// Run uses the clock it is given by the runtime: in a synctest bubble
// (the tests) time is virtual, and a simulated hour passes as fast as
// the machine computes it; outside one it is real.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := newNetwork(cfg)
	defer n.Close()
	rep := &Report{Config: ReportConfig{Discovery: cfg.Discovery, Relays: cfg.Relays, Clients: cfg.Clients, Sample: cfg.Sample,
		Observe: cfg.Observe.String(), SybilFraction: cfg.SybilFraction, WithholdFraction: cfg.WithholdFraction,
		LeaveRate: cfg.LeaveRate, CrashRate: cfg.CrashRate, JoinRate: cfg.JoinRate, Seed: cfg.Seed,
		SybilDelay: durationOrEmpty(cfg.SybilDelay), MinGuardAge: durationOrEmpty(cfg.MinGuardAge), MinExitAge: durationOrEmpty(cfg.MinExitAge)}}
	n.progress("starting relays")
	if err := n.startRelays(ctx); err != nil {
		return nil, err
	}
	n.progress("starting clients")
	if err := n.startClients(ctx, rep); err != nil {
		return nil, err
	}
	n.measureMemory(rep)
	n.measureConns(rep, 0)
	fresh, cancelFresh := context.WithCancel(ctx)
	var loops sync.WaitGroup
	for _, c := range n.clients {
		loops.Go(func() { c.keepFresh(fresh, cfg) })
	}
	n.progress("observing discovery")
	n.observe(ctx, rep)
	// The clients' views stay as they are now: the paths below are
	// chosen from them, and the anonymity sets computed against them.
	cancelFresh()
	loops.Wait()
	n.progress("new clients sampling to a complete view")
	n.probeViews(ctx, rep)
	n.progress("fetching through circuits")
	n.traffic(ctx, rep)
	n.exposure(rep)
	n.measureMemory(rep)
	n.measureConns(rep, 1)
	return rep, ctx.Err()
}

// progress reports that a phase starts.
func (n *Network) progress(phase string) {
	if n.cfg.Progress != nil {
		n.cfg.Progress(phase)
	}
}

// settle is how long relays get to join and publish before clients come.
const settle = 5 * time.Minute

// startRelays starts cfg.Relays relays, SybilFraction of them Sybils,
// with the withholding DHT nodes spread among them, and lets them settle.
func (n *Network) startRelays(ctx context.Context) error {
	cfg := n.cfg
	sybils := sybilCount(cfg)
	withhold := 0
	if cfg.WithholdFraction > 0 {
		withhold = int(cfg.WithholdFraction/(1-cfg.WithholdFraction)*float64(cfg.Relays) + 0.5)
	}
	// The first bootstrapRelays relays are honest; the rest is shuffled.
	kinds := make([]byte, cfg.Relays+withhold)
	for i := range kinds {
		switch {
		case i < sybils:
			kinds[i] = 's'
		case i < sybils+withhold:
			kinds[i] = 'w'
		default:
			kinds[i] = 'r'
		}
	}
	n.rnd.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	// The first bootstrapRelays are honest relays: everyone joins
	// through them.
	for i, j := 0, 0; i < bootstrapRelays && j < len(kinds); j++ {
		if kinds[j] == 'r' {
			kinds[i], kinds[j] = kinds[j], kinds[i]
			i++
		}
	}
	for _, k := range kinds {
		if k == 's' && cfg.SybilDelay > 0 {
			continue // addLateSybils starts them
		}
		var err error
		if k == 'w' {
			_, err = n.addWithholder()
		} else {
			_, err = n.addRelay(k == 's')
		}
		if err != nil {
			return err
		}
		// Relays come up over a few minutes, not all in one instant.
		sleep(ctx, 200*time.Millisecond)
	}
	sleep(ctx, settle)
	return ctx.Err()
}

func durationOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func sybilCount(cfg Config) int { return int(cfg.SybilFraction*float64(cfg.Relays) + 0.5) }

// addLateSybils starts the Sybils that startRelays held back, SybilDelay
// into the observation, 200 ms apart.
func (n *Network) addLateSybils(ctx context.Context, clock *relayClock) {
	if n.cfg.SybilDelay == 0 {
		return
	}
	sleep(ctx, n.cfg.SybilDelay)
	for range sybilCount(n.cfg) {
		if ctx.Err() != nil {
			return
		}
		if _, err := n.addRelay(true); err != nil {
			return
		}
		clock.add(len(n.live()), time.Now())
		sleep(ctx, 200*time.Millisecond)
	}
}

// startClients starts the clients and has them join and take their first
// sample, all at once.
func (n *Network) startClients(ctx context.Context, rep *Report) error {
	var (
		mu    sync.Mutex
		joins []time.Duration
		wg    sync.WaitGroup
	)
	for range n.cfg.Clients {
		c, err := n.addClient()
		if err != nil {
			return err
		}
		wg.Go(func() {
			start := time.Now()
			if err := c.join(ctx, n.cfg); err != nil {
				return
			}
			mu.Lock()
			joins = append(joins, time.Since(start))
			mu.Unlock()
		})
	}
	wg.Wait()
	rep.ClientJoin = distOf(joins)
	return ctx.Err()
}

// measureMemory records the heap per simulated node and the peak of the
// memory the process holds.
func (n *Network) measureMemory(rep *Report) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n.mu.Lock()
	nodes := len(n.relays) + len(n.clients) + len(n.withhold)
	n.mu.Unlock()
	rep.Nodes = nodes
	rep.HeapPerNode = max(rep.HeapPerNode, float64(ms.HeapInuse)/float64(max(nodes, 1)))
	rep.PeakSysBytes = max(rep.PeakSysBytes, ms.Sys)
}

// measureConns records the connections the relays hold, as figure i of
// rep's.
func (n *Network) measureConns(rep *Report, i int) {
	n.mu.Lock()
	relays := slices.Clone(n.relays)
	n.mu.Unlock()
	total, live := 0, 0
	for _, r := range relays {
		c := len(r.host.Network().Conns())
		if c == 0 { // gone (churn)
			continue
		}
		total += c
		live++
		rep.RelayConnsMax[i] = max(rep.RelayConnsMax[i], c)
	}
	if live > 0 {
		rep.RelayConnsMean[i] = float64(total) / float64(live)
	}
}

// relayEndpoints and clientEndpoints are the endpoints of every relay
// and client started so far.
func (n *Network) endpoints() (relays, clients []*endpoint) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.relays {
		relays = append(relays, r.ep)
	}
	for _, c := range n.clients {
		clients = append(clients, c.ep)
	}
	return relays, clients
}

// observe lets discovery run for Observe under churn, snapshots the
// views, runs the lookups and measures the bytes it all took.
func (n *Network) observe(ctx context.Context, rep *Report) {
	cfg := n.cfg
	relayEps, clientEps := n.endpoints()
	rs0, rr0 := sumBytes(relayEps)
	cs0, cr0 := sumBytes(clientEps)
	start := time.Now()
	octx, cancel := context.WithTimeout(ctx, cfg.Observe)
	defer cancel()
	var wg sync.WaitGroup
	relayHours := &relayClock{}
	relayHours.add(len(n.live()), start)
	wg.Go(func() { n.churn(octx, rep, relayHours) })
	wg.Go(func() { n.addLateSybils(octx, relayHours) })
	lookups := &lookupLog{}
	for _, c := range n.clients {
		wg.Go(func() { n.lookups(octx, c, lookups) })
	}
	every := cfg.Observe / time.Duration(cfg.Snapshots)
	for i := 1; i <= cfg.Snapshots; i++ {
		sleep(octx, time.Until(start.Add(time.Duration(i)*every))-time.Millisecond)
		if ctx.Err() != nil {
			break
		}
		s := n.snapshot()
		s.AtMinutes = time.Since(start).Minutes()
		rep.Views = append(rep.Views, s)
	}
	cancel()
	wg.Wait()
	hours := time.Since(start).Hours()
	relayEps, _ = n.endpoints() // relays that joined count too
	rs1, rr1 := sumBytes(relayEps)
	cs1, cr1 := sumBytes(clientEps)
	relayHours.add(len(n.live()), time.Now())
	rh := relayHours.hours()
	rep.RelayBytesPerHour = float64(rs1-rs0+rr1-rr0) / max(rh, 1e-9)
	rep.ClientBytesPerDay = float64(cs1-cs0+cr1-cr0) / float64(len(clientEps)) / hours * 24
	rep.TorRelayBytesPerHour = torRelayBytesPerHour(len(n.live()))
	rep.TorClientBytesPerDay = torClientBytesPerDay(len(n.live()))
	rep.Lookups, rep.LookupSuccess = lookups.result()
	rep.samples.lookups = lookups.ok
}

// snapshot compares the clients' views with the live relays now.
func (n *Network) snapshot() ViewSnapshot {
	live := map[peer.ID]bool{}
	for _, r := range n.live() {
		live[r.ID()] = true
	}
	var views []map[peer.ID]bool
	for _, c := range n.clients {
		views = append(views, c.view())
	}
	return snapshot(views, live)
}

// lookupLog collects lookup latencies.
type lookupLog struct {
	mu       sync.Mutex
	ok       []time.Duration
	attempts int
}

func (l *lookupLog) result() (Dist, float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return distOf(l.ok), round3(ratio(len(l.ok), l.attempts))
}

// lookups makes c's Lookups lookups of random live relays at random
// moments of the observation. A client that takes views has no DHT node:
// its lookups are made by a random other live relay, as relays look peers
// and hidden-service records up for clients.
func (n *Network) lookups(ctx context.Context, c *simClient, log *lookupLog) {
	n.mu.Lock()
	rnd := rand.New(rand.NewPCG(n.rnd.Uint64(), uint64(c.idx)))
	n.mu.Unlock()
	for range n.cfg.Lookups {
		sleep(ctx, time.Duration(rnd.Int64N(int64(n.cfg.Observe/time.Duration(n.cfg.Lookups)))))
		live := n.live()
		if ctx.Err() != nil || len(live) == 0 {
			return
		}
		ti := rnd.IntN(len(live))
		target, by := live[ti].ID(), c.node
		if by == nil {
			if len(live) < 2 {
				return
			}
			by = live[(ti+1+rnd.IntN(len(live)-1))%len(live)].node
		}
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		_, _, err := by.LookupRelay(lctx, target)
		d := time.Since(start)
		cancel()
		if ctx.Err() != nil {
			return // cut by the end of the observation, not a miss
		}
		log.mu.Lock()
		log.attempts++
		if err == nil {
			log.ok = append(log.ok, d)
		}
		log.mu.Unlock()
	}
}

// probeViews starts ViewProbes new clients that sample back to back
// until they know ViewTarget of the live relays, or ViewLimit passes.
func (n *Network) probeViews(ctx context.Context, rep *Report) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		times []time.Duration
	)
	for range n.cfg.ViewProbes {
		c, err := n.startProbe()
		if err != nil {
			continue
		}
		wg.Go(func() {
			defer c.stop()
			p := n.probe(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			rep.ViewProbes = append(rep.ViewProbes, p)
			if p.Seconds >= 0 {
				times = append(times, time.Duration(p.Seconds*float64(time.Second)))
			}
		})
	}
	wg.Wait()
	rep.TimeToComplete = distOf(times)
}

// startProbe starts a client that is not among the measured clients.
func (n *Network) startProbe() (*simClient, error) {
	n.mu.Lock()
	boot := n.bootstrap
	n.mu.Unlock()
	return n.startClient(-1, n.newEndpoint(true), boot)
}

func (n *Network) probe(ctx context.Context, c *simClient) ViewProbe {
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, n.cfg.ViewLimit)
	defer cancel()
	p := ViewProbe{Seconds: -1}
	if err := c.join(pctx, n.cfg); err == nil {
		p.Samples = 1
	}
	for pctx.Err() == nil {
		live := n.live()
		in := 0
		v := c.view()
		for _, r := range live {
			if v[r.ID()] {
				in++
			}
		}
		p.Completeness = round3(ratio(in, len(live)))
		if ratio(in, len(live)) >= n.cfg.ViewTarget {
			p.Seconds = time.Since(start).Seconds()
			break
		}
		sctx, scancel := context.WithTimeout(pctx, time.Minute)
		c.discover(sctx, n.cfg)
		scancel()
		p.Samples++
	}
	s, r := c.ep.Bytes()
	p.Bytes = s + r
	return p
}

// relayClock integrates the number of live relays over time.
type relayClock struct {
	mu    sync.Mutex
	last  time.Time
	count int
	sum   float64 // relay-hours
}

func (c *relayClock) add(live int, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.last.IsZero() {
		c.sum += float64(c.count) * now.Sub(c.last).Hours()
	}
	c.last, c.count = now, live
}

// hours is the relay-hours counted so far.
func (c *relayClock) hours() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sum
}

// exposure counts, for each client, the relays that ever had a
// connection with it over the whole run — each of them saw the client's
// address. Clients never connect to each other.
// It also counts the peers each client is still connected to at the end,
// and takes the share of the clients' last view sources that are
// bootstrap relays.
func (n *Network) exposure(rep *Report) {
	n.mu.Lock()
	relays, boot := len(n.relays), n.bootstrap
	n.mu.Unlock()
	var counts, now []float64
	fromBoot, sources := 0, 0
	for _, c := range n.clients {
		counts = append(counts, float64(c.peersSeen()))
		now = append(now, float64(len(c.host.Network().Peers())))
		for _, id := range c.views.Sources() {
			sources++
			if slices.ContainsFunc(boot, func(b peer.AddrInfo) bool { return b.ID == id }) {
				fromBoot++
			}
		}
	}
	rep.ClientExposure = Exposure{Mean: round3(mean(counts)), Max: int(maxOf(counts)), Relays: relays,
		ConnectedAtEnd: round3(mean(now)), BootstrapSources: round3(ratio(fromBoot, sources))}
}
