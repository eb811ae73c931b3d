package sim

import (
	"os"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/dht/view"
)

// TestSmall runs a small network end to end in virtual time: relays
// publish, clients discover them, build circuits through the real
// circuit manager and fetch through exits from the simulated web.
func TestSmall(t *testing.T) {
	rep := runVirtual(t, Config{Relays: 10, Clients: 2, Observe: 10 * time.Minute, Seed: 1})
	rep.Print(os.Stderr)
	if rep.FetchSuccess != 1 || rep.Dial.N != 2*3 {
		t.Errorf("fetch success %.3f over %d circuits, want every one of 6 through", rep.FetchSuccess, rep.Dial.N)
	}
	last := rep.Views[len(rep.Views)-1]
	if last.Completeness != 1 || last.Agreement != 1 || last.Live != 10 {
		t.Errorf("views %+v: with 10 relays every client should know all", last)
	}
	if rep.LookupSuccess != 1 {
		t.Errorf("lookup success %.3f, want 1 in a network without adversaries", rep.LookupSuccess)
	}
	if rep.RelayBytesPerHour <= 0 || rep.ClientBytesPerDay <= 0 {
		t.Errorf("discovery cost %v B/relay-hour, %v B/client-day: no bytes counted", rep.RelayBytesPerHour, rep.ClientBytesPerDay)
	}
	// An observer at any relay: only a client's view sources and its
	// guards ever see its address (specs/02, "Who joins the DHT").
	if e, most := rep.ClientExposure, view.DefaultSources+client.DefaultGuards; e.Max > most || e.Mean < 1 {
		t.Errorf("relays that saw a client: mean %.1f, max %d; want at least one and at most %d (its sources and guards)", e.Mean, e.Max, most)
	}
	// Once a client has guards they are its view's sources: the three
	// bootstrap relays are at most the share of them that are guards.
	if b := rep.ClientExposure.BootstrapSources; b > 0.5 {
		t.Errorf("%.3f of the clients' view sources are bootstrap relays: the sources did not move to the guards", b)
	}
	if c := rep.ClientExposure.ConnectedAtEnd; c > client.DefaultGuards {
		t.Errorf("clients end connected to %.1f relays on average, more than their %d guards", c, client.DefaultGuards)
	}
	if rep.Paths != 6 || rep.AnonymitySet != 1 {
		t.Errorf("%d paths seen with anonymity set %.3f: complete views should hide every client among all", rep.Paths, rep.AnonymitySet)
	}
	if rep.Adversary.GuardShare != 0 || rep.Adversary.PathShare != 0 {
		t.Errorf("adversary %+v without Sybils", rep.Adversary)
	}
}

// TestAdversaries runs the quick version of the scale run: Sybils that
// claim huge bandwidth, DHT nodes that withhold every record, and relays
// that leave, crash and join.
func TestAdversaries(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cfg := Config{Relays: 20, Clients: 3, Observe: 15 * time.Minute, Seed: 2,
		SybilFraction: 0.2, WithholdFraction: 0.2, CrashRate: 0.3, LeaveRate: 0.3, JoinRate: 0.3}
	rep := runVirtual(t, cfg)
	rep.Print(os.Stderr)
	a := rep.Adversary
	if a.Relays == 0 || a.GuardShare == 0 {
		t.Errorf("adversary %+v: Sybils claiming 1 GB/s were never chosen as guards", a)
	}
	// 0.3 per relay-hour of 20 relays for 15 minutes: 1.5 joins, leaves
	// and crashes each, of which whole ones happen (the tick at the end
	// may fall after it).
	if c := rep.Churn; c.Joined != 1 || c.Left != 1 || c.Crashed != 1 {
		t.Errorf("churn %+v, want one join, one leave and one crash", c)
	}
	if last := rep.Views[len(rep.Views)-1]; last.Live != 20+rep.Churn.Joined-rep.Churn.Left-rep.Churn.Crashed {
		t.Errorf("%d live relays at the end after churn %+v", last.Live, rep.Churn)
	}
	if rep.Paths == 0 || rep.AnonymitySet <= 0 || rep.AnonymitySet > 1 {
		t.Errorf("%d paths, anonymity set %.3f", rep.Paths, rep.AnonymitySet)
	}
	// The disjoint lookups get past withholding nodes.
	if rep.LookupSuccess < 0.8 {
		t.Errorf("lookup success %.3f with 20%% withholding DHT nodes", rep.LookupSuccess)
	}
	// Failed builds are retried on other paths.
	if rep.FetchSuccess < 0.8 {
		t.Errorf("fetch success %.3f under churn", rep.FetchSuccess)
	}
}

// TestLateSybils: Sybils claiming 1 GB/s join a network whose clients
// already know the honest relays, and are in every client's view when
// traffic starts; clients with the real guard and exit ages choose none
// of them as a guard or an exit, and their fetches all go through.
func TestLateSybils(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cfg := Config{Relays: 12, Clients: 3, Observe: 45 * time.Minute, Seed: 3,
		SybilFraction: 0.25, SybilDelay: 35 * time.Minute,
		MinGuardAge: 8 * 24 * time.Hour, MinExitAge: 3 * 24 * time.Hour}
	rep := runVirtual(t, cfg)
	rep.Print(os.Stderr)
	last := rep.Views[len(rep.Views)-1]
	if a := rep.Adversary; a.Relays != 3 || last.Live != 12 || last.CompletenessMin != 1 {
		t.Fatalf("adversary %+v, views %+v: the 3 Sybils should be in every client's view", a, last)
	}
	if a := rep.Adversary; a.GuardShare != 0 || a.ExitShare != 0 || a.PathShare == 0 {
		t.Errorf("adversary %+v: Sybils younger than the ages are guards or exits, or not even middles", a)
	}
	if rep.FetchSuccess != 1 {
		t.Errorf("fetch success %.3f: the honest exits should carry every fetch", rep.FetchSuccess)
	}
}
