package sim

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// Flags of TestScale, the large runs that `obol sim` drives:
//
//	go test -run '^TestScale$' -timeout 0 ./sim -sim.relays 1000 -sim.clients 1000 -sim.out report.json
var (
	simRelays   = flag.Int("sim.relays", 0, "relays of TestScale (0 skips it)")
	simClients  = flag.Int("sim.clients", 0, "clients (default: as many as relays)")
	simObserve  = flag.Duration("sim.observe", time.Hour, "virtual time discovery is observed for")
	simDiscover = flag.String("sim.discovery", "", "how clients learn relays: view (default) or sample")
	simSample   = flag.Int("sim.sample", 0, "clients' sample size with -sim.discovery sample (default 200)")
	simSybil    = flag.Float64("sim.sybil", 0, "fraction of relays that are Sybils")
	simWithhold = flag.Float64("sim.withhold", 0, "fraction of DHT servers that withhold records")
	simLeave    = flag.Float64("sim.leave", 0, "relays leaving per relay-hour")
	simCrash    = flag.Float64("sim.crash", 0, "relays crashing per relay-hour")
	simJoin     = flag.Float64("sim.join", 0, "relays joining per relay-hour")
	simFetches  = flag.Int("sim.fetches", 0, "fetches per client (default 3)")
	simProbes   = flag.Int("sim.probes", 0, "new clients measuring the time to a complete view (default 1)")
	simSeed     = flag.Uint64("sim.seed", 1, "seed")
	simConns    = flag.Int("sim.relay-conns", 0, "relays' connection high watermark (0: obol relay's, 2048)")
	simLate     = flag.Duration("sim.sybil-delay", 0, "Sybils join this far into the observation (0: at the start)")
	simGuardAge = flag.Duration("sim.min-guard-age", 0, "clients' guard age (0: waived)")
	simExitAge  = flag.Duration("sim.min-exit-age", 0, "clients' exit age (0: waived)")
	simOut      = flag.String("sim.out", "", "write the report as JSON here")
	simPlots    = flag.String("sim.plots", "", "write PNG plots into this directory")
	simHeap     = flag.String("sim.heapprofile", "", "write a heap profile here when traffic starts")
)

// TestScale runs the network the -sim flags describe, in virtual time,
// and prints its report.
func TestScale(t *testing.T) {
	if *simRelays == 0 {
		t.Skip("no -sim.relays")
	}
	clients := *simClients
	if clients == 0 {
		clients = *simRelays
	}
	cfg := Config{Relays: *simRelays, Clients: clients, Observe: *simObserve, Discovery: *simDiscover, Sample: *simSample,
		SybilFraction: *simSybil, WithholdFraction: *simWithhold,
		LeaveRate: *simLeave, CrashRate: *simCrash, JoinRate: *simJoin,
		Fetches: *simFetches, ViewProbes: *simProbes, Seed: *simSeed, RelayConns: *simConns,
		SybilDelay: *simLate, MinGuardAge: *simGuardAge, MinExitAge: *simExitAge}
	wall := wallClock()
	cfg.Progress = func(phase string) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "sim: %s (%.0f s wall, %d MiB heap)\n", phase, wallClock()-wall, ms.HeapInuse>>20)
		if *simHeap != "" && strings.HasPrefix(phase, "fetching") {
			if f, err := os.Create(*simHeap); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}
	rep := runVirtual(t, cfg)
	rep.Print(os.Stdout)
	if *simOut != "" {
		if err := rep.WriteJSON(*simOut); err != nil {
			t.Fatal(err)
		}
	}
	if *simPlots != "" {
		if err := rep.Plot(*simPlots); err != nil {
			t.Fatal(err)
		}
	}
}

// wallClock is the real time in seconds, inside a synctest bubble too
// (where package time tells virtual time).
func wallClock() float64 {
	var tv syscall.Timeval
	syscall.Gettimeofday(&tv)
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// runVirtual runs cfg in a synctest bubble and adds the wall time the
// run took to its report.
func runVirtual(t *testing.T, cfg Config) *Report {
	t.Helper()
	if raceDetector {
		// The race detector's runtime crashes now and then in a synctest
		// bubble (golang/go#78156, open; seen here as a SIGSEGV in
		// __tsan::SlotLock). make test runs these tests without -race.
		t.Skip("virtual time under -race: golang/go#78156; run without -race")
	}
	var rep *Report
	start := time.Now()
	synctest.Test(t, func(t *testing.T) {
		var err error
		if rep, err = Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	})
	if rep == nil {
		t.FailNow()
	}
	rep.WallSeconds = time.Since(start).Seconds()
	return rep
}
