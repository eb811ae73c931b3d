package hidden

import (
	"crypto/ed25519"
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// publishOnce signs every record of one publication at now, as publish
// does, and returns them as a DHT node verifies them.
func publishOnce(t *testing.T, key ed25519.PrivateKey, now time.Time, steps map[uint64]uint64, seed uint64) []*descriptor.HSRecord {
	t.Helper()
	content := &descriptor.HSContent{Intros: []descriptor.IntroPoint{{Relay: peer.ID("intro")}}}
	blinded := func(p descriptor.Period) *descriptor.BlindedKey { return descriptor.BlindPrivateKey(key, p) }
	params, err := recordParams(blinded, now, descriptor.DefaultPeriod, 3*time.Hour, steps, mrand.New(mrand.NewPCG(seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	var out []*descriptor.HSRecord
	for _, p := range params {
		raw, err := descriptor.SignHS(rand.Reader, key, content, p)
		if err != nil {
			t.Fatal(err)
		}
		u, err := descriptor.DecodeHS(raw)
		if err != nil {
			t.Fatal(err)
		}
		r, err := u.Verify(now)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// A DHT node that holds records of the current and the next period, or
// two replicas of one period, finds no clear-text value in common that
// could link them: not the revision, the published time, the expiry nor
// the key. Replicas of one period share only their blinded key and
// revision, which the index already ties together.
func TestRecordsShareNoField(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	steps := map[uint64]uint64{}
	for i, now := range []time.Time{time.Unix(1_800_000_000, 0), time.Unix(1_800_000_000, 0), time.Unix(1_800_003_600, 0)} {
		recs := publishOnce(t, key, now, steps, uint64(i))
		if len(recs) != 2*descriptor.HSReplicas {
			t.Fatalf("%d records", len(recs))
		}
		for a, ra := range recs {
			for _, rb := range recs[a+1:] {
				samePeriod := ra.Period == rb.Period
				switch {
				case ra.Published == rb.Published:
					t.Fatalf("publication %d: two records share the published time %d", i, ra.Published)
				case ra.Expires == rb.Expires:
					t.Fatalf("publication %d: two records share the expiry %d", i, ra.Expires)
				case !samePeriod && ra.Revision == rb.Revision:
					t.Fatalf("publication %d: periods %d and %d share revision %d", i, ra.Period.Num, rb.Period.Num, ra.Revision)
				case !samePeriod && ra.Blinded == rb.Blinded:
					t.Fatal("two periods share a blinded key")
				}
			}
			// Neither the clock nor the millisecond time shows through.
			for _, v := range []int64{now.Unix(), now.UnixMilli()} {
				if ra.Revision == uint64(v) || ra.Published == v {
					t.Fatalf("publication %d: a record shows the publication time %d", i, v)
				}
			}
		}
	}
}

// Under one blinded key every publication's revision is higher than the
// last, also twice in one second and across a restart (no saved state),
// so the DHT keeps the newest record.
func TestRevisionsIncrease(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	steps := map[uint64]uint64{}
	last := map[uint64]uint64{}
	t0 := time.Unix(1_800_000_000, 0)
	times := []time.Time{t0, t0, t0.Add(500 * time.Millisecond), t0.Add(time.Second), t0.Add(time.Hour)}
	for i, now := range times {
		if i == len(times)-1 {
			steps = map[uint64]uint64{} // a restart
		}
		for _, r := range publishOnce(t, key, now, steps, uint64(i)) {
			if r.Replica != 0 {
				continue
			}
			if prev, ok := last[r.Period.Num]; ok && r.Revision <= prev {
				t.Fatalf("publication %d, period %d: revision %d after %d", i, r.Period.Num, r.Revision, prev)
			}
			last[r.Period.Num] = r.Revision
		}
	}
	if len(last) != 2 {
		t.Fatalf("records of %d periods", len(last))
	}
}

// A service restarted within the second of its last publication signs
// records of a higher revision than that publication's, in both periods:
// DHT nodes keep the record they have of a revision, so the restarted
// service's records, with its new intro points, would not replace the
// old ones.
func TestRestartedServiceRevisesAbove(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	second := time.Unix(1_800_000_000, 0)
	started := second.Add(-5 * time.Second) // the service that published last
	last := publishOnce(t, key, second.Add(100*time.Millisecond), startSteps(started, descriptor.DefaultPeriod), 1)
	restart := second.Add(600 * time.Millisecond)
	again := publishOnce(t, key, restart, startSteps(restart, descriptor.DefaultPeriod), 2)
	for i := range again {
		if again[i].Period != last[i].Period || again[i].Revision <= last[i].Revision {
			t.Errorf("record %d (period %d) of the restarted service: revision %d, the last publication's %d (period %d)",
				i, again[i].Period.Num, again[i].Revision, last[i].Revision, last[i].Period.Num)
		}
	}
}
