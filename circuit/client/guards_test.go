package client

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
)

const (
	testLifetime = 30 * 24 * time.Hour
	testReplace  = 24 * time.Hour
)

type guardFixture struct {
	t      *testing.T
	path   string
	relays []*descriptor.Relay
	rules  pathRules
	rnd    *mrand.Rand
}

func newGuardFixture(t *testing.T) *guardFixture {
	f := &guardFixture{t: t, path: filepath.Join(t.TempDir(), "guards.json"), rules: testRules(3),
		rnd: mrand.New(mrand.NewPCG(11, 12))}
	for i := range 12 {
		f.relays = append(f.relays, fakeRelay(t, descriptor.RoleGuard, 1<<20, fmt.Sprintf("10.%d.0.1", i)))
	}
	return f
}

func (f *guardFixture) open() *guardSet {
	g := newGuardSet(f.path, 3, testLifetime, testReplace, DefaultMinGuardAge)
	if err := g.load(); err != nil {
		f.t.Fatal(err)
	}
	return g
}

func (f *guardFixture) refresh(g *guardSet, now time.Time) bool {
	changed, err := g.refresh(f.rules.candidates(f.relays, now), f.rules, f.rnd, now)
	if err != nil {
		f.t.Fatal(err)
	}
	return changed
}

func diff(a, b []peer.ID) int {
	n := 0
	for _, id := range a {
		if !slices.Contains(b, id) {
			n++
		}
	}
	return n
}

// Guards are chosen once, kept across refreshes and restarts.
func TestGuardsPersist(t *testing.T) {
	f := newGuardFixture(t)
	g := f.open()
	f.refresh(g, testNow)
	first := g.IDs()
	if len(first) != 3 {
		t.Fatalf("%d guards, want 3", len(first))
	}
	for i := range 10 {
		f.refresh(g, testNow.Add(time.Duration(i)*24*time.Hour))
	}
	g2 := f.open() // a restart
	if f.refresh(g2, testNow.Add(10*24*time.Hour)); !slices.Equal(g2.IDs(), first) {
		t.Fatalf("guards changed across a restart: %v → %v", first, g2.IDs())
	}
	st, err := os.Stat(f.path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("guard file: %v, mode %v", err, st.Mode().Perm())
	}
}

// A guard past its lifetime is replaced.
func TestGuardLifetimeEnds(t *testing.T) {
	f := newGuardFixture(t)
	g := f.open()
	f.refresh(g, testNow)
	first := g.IDs()
	later := testNow.Add(testLifetime)
	f.refresh(g, later)
	if len(g.IDs()) != 3 {
		t.Fatalf("after the lifetime: %v → %v", first, g.IDs())
	}
	for _, r := range g.guards {
		if !r.Added.Equal(later) {
			t.Fatalf("guard %s added %v survived its lifetime", r.ID, r.Added)
		}
	}
}

// One guard unreachable for long while another works is replaced; the
// others stay.
func TestGuardUnreachableReplaced(t *testing.T) {
	f := newGuardFixture(t)
	g := f.open()
	f.refresh(g, testNow)
	first := g.IDs()
	bad := first[1]
	for h := range 30 {
		now := testNow.Add(time.Duration(h) * time.Hour)
		g.failed(bad, now)
		g.succeeded(first[0], now)
		f.refresh(g, now)
	}
	got := g.IDs()
	if slices.Contains(got, bad) || diff(first, got) != 1 || len(got) != 3 {
		t.Fatalf("guards %v → %v; want only %s replaced", first, got, bad)
	}
}

// When every guard fails (the client's network is down), none is
// replaced, however long it lasts; when it comes back they are all kept.
func TestGuardsKeptThroughOutage(t *testing.T) {
	f := newGuardFixture(t)
	g := f.open()
	f.refresh(g, testNow)
	first := g.IDs()
	for h := range 72 {
		now := testNow.Add(time.Duration(h) * time.Hour)
		for _, id := range first {
			g.failed(id, now)
		}
		f.refresh(g, now)
	}
	now := testNow.Add(73 * time.Hour)
	g.succeeded(first[2], now)
	g.succeeded(first[0], now)
	g.succeeded(first[1], now)
	f.refresh(g, now)
	if !slices.Equal(g.IDs(), first) {
		t.Fatalf("guards replaced after an outage: %v → %v", first, g.IDs())
	}
}

// Several bad guards are replaced one refresh at a time, never all at once.
func TestGuardsNeverAllAtOnce(t *testing.T) {
	f := newGuardFixture(t)
	g := f.open()
	f.refresh(g, testNow)
	first := g.IDs()
	now := testNow
	for h := range 30 {
		now = testNow.Add(time.Duration(h) * time.Hour)
		g.failed(first[1], now)
		g.failed(first[2], now)
		g.succeeded(first[0], now)
	}
	f.refresh(g, now)
	if d := diff(first, g.IDs()); d != 1 {
		t.Fatalf("%d guards replaced in one refresh, want 1", d)
	}
	f.refresh(g, now.Add(time.Second))
	if d := diff(first, g.IDs()); d != 2 || !slices.Contains(g.IDs(), first[0]) {
		t.Fatalf("after two refreshes %d replaced, want 2 and the good one kept", d)
	}
}

// A guard missing from the cache for long is replaced; an empty cache
// says nothing and replaces nobody.
func TestGuardMissingReplaced(t *testing.T) {
	f := newGuardFixture(t)
	g := f.open()
	f.refresh(g, testNow)
	first := g.IDs()
	all := f.relays
	f.relays = nil
	f.refresh(g, testNow.Add(2*testReplace))
	if !slices.Equal(g.IDs(), first) {
		t.Fatal("an empty cache replaced guards")
	}
	f.relays = slices.DeleteFunc(slices.Clone(all), func(r *descriptor.Relay) bool { return r.PeerID == first[0] })
	f.refresh(g, testNow.Add(3*testReplace))
	f.refresh(g, testNow.Add(4*testReplace+time.Second))
	if slices.Contains(g.IDs(), first[0]) || len(g.IDs()) != 3 {
		t.Fatalf("missing guard kept: %v", g.IDs())
	}
}

// A guard that just failed is tried after the others.
func TestGuardOrderAfterFailure(t *testing.T) {
	f := newGuardFixture(t)
	g := f.open()
	f.refresh(g, testNow)
	ids := g.IDs()
	g.failed(ids[0], testNow)
	u := g.usable(f.rules.candidates(f.relays, testNow), testNow)
	if len(u) != 3 || u[0].id() != ids[1] || u[2].id() != ids[0] {
		t.Fatal("failed guard not moved last")
	}
	u = g.usable(f.rules.candidates(f.relays, testNow), testNow.Add(guardRetry))
	if u[0].id() != ids[0] {
		t.Fatal("failed guard not retried first after the retry delay")
	}
}

func TestGuardFileDamaged(t *testing.T) {
	f := newGuardFixture(t)
	os.WriteFile(f.path, []byte("{not json"), 0o600)
	g := newGuardSet(f.path, 3, testLifetime, testReplace, DefaultMinGuardAge)
	if err := g.load(); err == nil {
		t.Fatal("damaged guard file loaded")
	}
}

func TestBuildTimer(t *testing.T) {
	b := newBuildTimer(10*time.Second, time.Second, time.Minute)
	if b.timeout() != 10*time.Second {
		t.Fatal("initial timeout not used")
	}
	for i := range 100 {
		b.observe(time.Duration(i+1) * 10 * time.Millisecond) // 10 ms … 1 s
	}
	if got := b.timeout(); got != 1900*time.Millisecond {
		t.Fatalf("learned %v, want 2×p95 = 1.9 s", got)
	}
	for range 100 {
		b.observe(time.Millisecond)
	}
	if got := b.timeout(); got != time.Second {
		t.Fatalf("learned %v, want the 1 s floor", got)
	}
	b.timedOut()
	b.timedOut()
	b.timedOut()
	if b.timeout() != 10*time.Second {
		t.Fatal("timeouts in a row did not reset the learned timeout")
	}
}

func TestConfigValidate(t *testing.T) {
	dir := DirectoryFunc(func() []*descriptor.Relay { return nil })
	links := link.NewManager(nil, link.Config{})
	if (&Config{Directory: dir}).Validate() == nil {
		t.Fatal("missing Links accepted")
	}
	if (&Config{Links: links}).Validate() == nil {
		t.Fatal("missing Directory accepted")
	}
	if err := (&Config{Links: links, Directory: dir}).Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for i, c := range []Config{{Hops: 9}, {Hops: -1}, {MaxDirtiness: time.Hour}, {Guards: 9},
		{PrebuildPorts: []uint16{0}}, {IdleTimeout: -1}, {MinBuildTimeout: time.Minute, MaxBuildTimeout: time.Second}} {
		c.Links, c.Directory = links, dir
		if c.Validate() == nil {
			t.Errorf("case %d accepted", i)
		}
	}
}

// A version 1 guard file (no history of seen relays) keeps its guards;
// the history starts with the next refresh.
func TestGuardFileVersion1(t *testing.T) {
	f := newGuardFixture(t)
	id := f.relays[0].PeerID
	v1 := fmt.Sprintf(`{"version":1,"guards":[{"id":%q,"added":"2026-01-01T00:00:00Z","until":"2099-01-01T00:00:00Z"}]}`, id)
	if err := os.WriteFile(f.path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	g := f.open()
	if ids := g.IDs(); len(ids) != 1 || ids[0] != id {
		t.Fatalf("guards %v, want [%s]", ids, id)
	}
	f.refresh(g, testNow)
	if ids := g.IDs(); len(ids) != 3 || ids[0] != id {
		t.Fatalf("guards %v after refresh, want %s first of 3", ids, id)
	}
	if g := f.open(); !g.since.Equal(testNow) || len(g.seen) != len(f.relays) {
		t.Fatalf("history since %v with %d relays, want %v with %d", g.since, len(g.seen), testNow, len(f.relays))
	}
}

// A relay that joins after the client's first view becomes a guard only
// once it is MinGuardAge old; with a negative MinGuardAge at once.
func TestGuardMinAge(t *testing.T) {
	for _, minAge := range []time.Duration{DefaultMinGuardAge, -1} {
		f := newGuardFixture(t)
		late := fakeRelay(t, descriptor.RoleGuard, 1<<20, "10.200.0.1")
		g := newGuardSet("", 3, testLifetime, testReplace, minAge)
		f.refresh(g, testNow)
		f.relays = append(f.relays, late)
		joined := testNow.Add(24 * time.Hour)
		f.refresh(g, joined)
		for _, at := range []time.Duration{0, DefaultMinGuardAge - time.Second, DefaultMinGuardAge} {
			g.mu.Lock()
			ok := g.oldEnoughLocked(late.PeerID, joined.Add(at))
			g.mu.Unlock()
			if want := minAge < 0 || at >= DefaultMinGuardAge; ok != want {
				t.Errorf("min age %v: eligible %v old: %v, want %v", minAge, at, ok, want)
			}
		}
	}
}

// A guard set told to prefer another's guards (a client's mint circuits
// preferring its exit circuits' guards) takes them, so that no more relays
// see the client; one it cannot use is replaced as usual.
func TestGuardsPreferAnotherSet(t *testing.T) {
	f := newGuardFixture(t)
	main := f.open()
	f.refresh(main, testNow)
	f.path = filepath.Join(t.TempDir(), "mint-guards.json")
	other := f.open()
	// As a client's managers do, it is told its own guards too (and
	// must not wait on itself for them).
	other.prefer = func() []peer.ID { return append(main.IDs(), other.IDs()...) }
	f.refresh(other, testNow)
	if !slices.Equal(other.IDs(), main.IDs()) {
		t.Fatalf("guards %v, want the preferred %v", other.IDs(), main.IDs())
	}

	// A preferred relay this set cannot use (not among its candidates,
	// as a relay giving no free allowance is not for mint circuits).
	f.path = filepath.Join(t.TempDir(), "mint-guards-2.json")
	third := f.open()
	third.prefer = main.IDs
	unusable := main.IDs()[0]
	var relays []*descriptor.Relay
	for _, r := range f.relays {
		if r.PeerID != unusable {
			relays = append(relays, r)
		}
	}
	if _, err := third.refresh(f.rules.candidates(relays, testNow), f.rules, f.rnd, testNow); err != nil {
		t.Fatal(err)
	}
	got := third.IDs()
	if len(got) != 3 || slices.Contains(got, unusable) || diff(main.IDs(), got) != 1 {
		t.Fatalf("guards %v with %s unusable, want the other two preferred and one more (preferred %v)", got, unusable, main.IDs())
	}
}
