package dht_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	kad "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
)

// hsStaleKeeper stores any record and, between two hidden-service
// descriptors, keeps the lower revision: it serves stale descriptors.
type hsStaleKeeper struct{}

func (hsStaleKeeper) Validate(string, []byte) error { return nil }
func (hsStaleKeeper) Select(_ string, vals [][]byte) (int, error) {
	best, bestRev := 0, ^uint64(0)
	for i, v := range vals {
		if u, err := descriptor.DecodeHS(v); err == nil {
			if r, err := u.Verify(time.Now()); err == nil && r.Revision < bestRev {
				best, bestRev = i, r.Revision
			}
		}
	}
	return best, nil
}

// eclipseTarget is a hidden-service descriptor slot with a current
// (revision 2) and a stale (revision 1) record.
type eclipseTarget struct {
	index        [32]byte
	fresh, stale []byte
}

// hsTargetsNear signs descriptors for fresh service keys until n of them
// have a DHT key sharing at least bits leading bits with region.
func hsTargetsNear(t *testing.T, region [32]byte, bits, n int) []eclipseTarget {
	now := time.Now()
	params := func(rev uint64) descriptor.HSParams {
		return descriptor.HSParams{Period: descriptor.PeriodAt(now, descriptor.DefaultPeriod),
			Revision: rev, Published: now, Expires: now.Add(time.Hour)}
	}
	c := &descriptor.HSContent{Intros: []descriptor.IntroPoint{{Relay: "intro"}}}
	var out []eclipseTarget
	for len(out) < n {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		fresh, err := descriptor.SignHS(rand.Reader, k, c, params(2))
		if err != nil {
			t.Fatal(err)
		}
		u, _ := descriptor.DecodeHS(fresh)
		r, err := u.Verify(now)
		if err != nil {
			t.Fatal(err)
		}
		pos := sha256.Sum256([]byte(dht.HSKey(r.Index())))
		if commonPrefix(pos[:], region[:]) < bits {
			continue
		}
		stale, err := descriptor.SignHS(rand.Reader, k, c, params(1))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, eclipseTarget{index: r.Index(), fresh: fresh, stale: stale})
	}
	return out
}

// grindInto returns a key whose peer ID shares at least bits leading bits
// with region in the Kademlia key space.
func grindInto(region [32]byte, bits int) crypto.PrivKey {
	for {
		k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		id, _ := peer.IDFromPrivateKey(k)
		pos := sha256.Sum256([]byte(id))
		if commonPrefix(pos[:], region[:]) >= bits {
			return k
		}
	}
}

type lookupStats struct {
	found int
	lat   []time.Duration
}

func (s *lookupStats) p(q int) time.Duration {
	l := slices.Clone(s.lat)
	slices.Sort(l)
	return l[(len(l)-1)*q/100]
}

// 8 hostile DHT servers among 40 (20%), all with IDs ground into the
// region of the key space where 24 hidden-service descriptors live, so
// that they are the nodes nearest to every one of those keys; half of
// them withhold and half serve a stale (older, genuinely signed)
// descriptor. Three clients look up every descriptor with kad-dht's
// lookup and with the disjoint one: the disjoint lookup finds the current
// descriptor at least 95% of the time.
func TestEclipseDisjointLookup(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	const honest, hostile, keys, bits, clients = 32, 8, 24, 5, 3
	net := dhttest.NewCluster(t, honest, dhttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var region [32]byte
	rand.Read(region[:])
	targets := hsTargetsNear(t, region, bits, keys)
	// Clients join through relays other than relay 0, which every other
	// node has joined through. Two publishers, so that neither comes near
	// the per-peer put limit.
	via := func(i int) []peer.AddrInfo { return []peer.AddrInfo{dhttest.AddrInfo(net.Relays[i].Host)} }
	pubs := []*dht.Node{dhttest.NewClient(t, via(1)), dhttest.NewClient(t, via(2))}

	done, stop := context.WithCancel(ctx)
	stop() // a put with a done context stores the record locally only
	var keepers []*kad.IpfsDHT
	for i := range hostile {
		key := grindInto(region, bits)
		if i%2 == 0 {
			startHostile(t, key, withholder{}, net.Bootstrap())
			continue
		}
		k := startHostile(t, key, hsStaleKeeper{}, net.Bootstrap())
		for _, tg := range targets {
			k.PutValue(done, dht.HSKey(tg.index), tg.stale)
		}
		keepers = append(keepers, k)
	}
	for i, tg := range targets {
		if err := pubs[i%2].PutHS(ctx, tg.fresh); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keepers { // the attack is live
		for _, tg := range targets {
			got, err := k.GetValue(ctx, dht.HSKey(tg.index), routing.Offline)
			if err != nil || !slices.Equal(got, tg.stale) {
				t.Fatalf("stale keeper does not hold the stale record (%v)", err)
			}
		}
	}

	type getFunc func(*dht.Node, context.Context, [32]byte) (*descriptor.HSRecord, []byte, error)
	kinds := []struct {
		name string
		get  getFunc
	}{{"plain", (*dht.Node).GetHSPlain}, {"disjoint", (*dht.Node).GetHSDisjoint}}
	stats := map[string]*lookupStats{"plain": {}, "disjoint": {}}
	for i := range clients {
		c := dhttest.NewClient(t, via(3+i))
		for _, tg := range targets {
			for _, k := range kinds {
				lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
				t0 := time.Now()
				r, _, err := k.get(c, lctx, tg.index)
				st := stats[k.name]
				st.lat = append(st.lat, time.Since(t0))
				lcancel()
				switch {
				case err == nil && r.Revision == 2:
					st.found++
				case err == nil:
					t.Logf("%s lookup returned revision %d", k.name, r.Revision)
				case !errors.Is(err, dht.ErrNotFound):
					t.Logf("%s lookup: %v", k.name, err)
				}
			}
		}
	}
	n := clients * keys
	for _, k := range kinds {
		s := stats[k.name]
		t.Logf("%s lookup: current record %d/%d (%.1f%%), latency p50 %v p95 %v",
			k.name, s.found, n, 100*float64(s.found)/float64(n), s.p(50), s.p(95))
	}
	if d := stats["disjoint"].found; d*100 < 95*n {
		t.Fatalf("disjoint lookup found the current record in %d of %d lookups", d, n)
	}
}
