package node

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/obolnet/obol/descriptor"
)

// The keys of the coming intervals are made ahead, so a descriptor signed
// at any moment names the key a client must use at every later moment of
// its life; the relay answers each key only around its own interval; a
// retired key is gone; the schedule survives a restart.
func TestOnionKeySchedule(t *testing.T) {
	path := filepath.Join(t.TempDir(), OnionKeyFile)
	rotate, life := 4*time.Hour, 24*time.Hour
	t0 := time.Unix(1_800_000_000, 0)
	k, err := loadOnionKeyring(path, rotate, life, t0)
	if err != nil {
		t.Fatal(err)
	}
	for step := time.Duration(0); step < 3*life; step += 17 * time.Minute {
		now := t0.Add(step)
		if _, err := k.Rotate(now); err != nil {
			t.Fatal(err)
		}
		keys, covered := k.Published(now)
		if len(keys) > descriptor.MaxOnionKeys {
			t.Fatalf("%v: %d keys published", step, len(keys))
		}
		if covered.Before(now.Add(life)) {
			t.Fatalf("%v: keys cover until %v, a descriptor lives until %v", step, covered, now.Add(life))
		}
		d := &descriptor.Relay{OnionKeys: keys}
		// At every later moment of a descriptor signed now, the key the
		// client picks is one the relay answers then (and no future key
		// is answered before its time).
		for at := now; !at.After(now.Add(life)); at = at.Add(7 * time.Minute) {
			pick, ok := d.OnionKeyAt(at)
			if !ok {
				t.Fatalf("signed at +%v: no key at +%v", step, at.Sub(t0))
			}
			answered := k.answeredAt(at)
			if !answered[pick.Key] {
				t.Fatalf("signed at +%v: the key picked at +%v is not answered then", step, at.Sub(t0))
			}
			if len(answered) > 2 {
				t.Fatalf("+%v: %d keys answered at once", at.Sub(t0), len(answered))
			}
		}
	}
	// The key of the first interval is erased once retired.
	first := k.CircuitKeys(t0.Add(3 * life))
	again, err := loadOnionKeyring(path, rotate, life, t0.Add(3*life))
	if err != nil {
		t.Fatal(err)
	}
	if got := again.CircuitKeys(t0.Add(3 * life)); len(got) == 0 || got[0].Public != first[0].Public {
		t.Fatal("current key changed across a restart")
	}
}

// answeredAt is the set of public keys CircuitKeys would give the router
// at at, without making new ones.
func (k *onionKeyring) answeredAt(at time.Time) map[[32]byte]bool {
	out := map[[32]byte]bool{}
	for _, ck := range k.CircuitKeys(at) {
		out[ck.Public] = true
	}
	return out
}

// A keyring written before keys were made ahead (no start times) keeps its
// key answered to its old not-after and continues the schedule after it.
func TestOnionKeyringFromAnOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), OnionKeyFile)
	t0 := time.Unix(1_800_000_000, 0)
	k, err := loadOnionKeyring(path, 4*time.Hour, 3*time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Make it look old: one key, current since t0, answered for 7 h.
	k.keys = k.keys[:1]
	k.keys[0].Start, k.keys[0].NotAfter = 0, t0.Add(7*time.Hour).Unix()
	old := [32]byte(k.keys[0].Public)
	k2 := &onionKeyring{path: path, rotate: 4 * time.Hour, lifetime: 24 * time.Hour, keys: k.keys}
	if _, err := k2.Rotate(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !k2.answeredAt(t0.Add(6 * time.Hour))[old] {
		t.Fatal("the old key is no longer answered before its not-after")
	}
	if _, covered := k2.Published(t0.Add(time.Hour)); covered.Before(t0.Add(25 * time.Hour)) {
		t.Fatalf("keys cover until %v only", covered)
	}
}

// A relay that restarts with a longer rotation interval (4-hour keys of
// an older configuration, now daily ones) continues its schedule where
// its stored keys end: every moment of a descriptor's life has a key, the
// descriptor claims no coverage its keys do not give, and once the old
// keys are gone its descriptors live a whole lifetime again.
func TestOnionKeyringRotationLengthened(t *testing.T) {
	path := filepath.Join(t.TempDir(), OnionKeyFile)
	t0 := time.Unix(1_800_000_000, 0)
	if _, err := loadOnionKeyring(path, 4*time.Hour, 24*time.Hour, t0); err != nil {
		t.Fatal(err)
	}
	const lifetime = 6 * 24 * time.Hour
	now := t0.Add(time.Hour)
	k, err := loadOnionKeyring(path, 24*time.Hour, lifetime, now)
	if err != nil {
		t.Fatal(err)
	}
	covered := func(now time.Time) time.Time {
		keys, until := k.Published(now)
		if len(keys) > descriptor.MaxOnionKeys {
			t.Fatalf("%d keys published", len(keys))
		}
		// A client picks, at each moment, a key valid a minute ahead.
		for at := now; at.Before(until); at = at.Add(10 * time.Minute) {
			ok := false
			for _, pk := range keys {
				if pk.NotAfter > at.Add(time.Minute).Unix() && k.answeredAt(at)[pk.Key] {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("published at %v: no key answered %v later", now.Sub(t0), at.Sub(now))
			}
		}
		return until
	}
	if until := covered(now); until.Before(now.Add(24 * time.Hour)) {
		t.Fatalf("keys cover %v only", until.Sub(now))
	}
	later := t0.Add(25 * time.Hour)
	if _, err := k.Rotate(later); err != nil {
		t.Fatal(err)
	}
	if until := covered(later); until.Before(later.Add(lifetime)) {
		t.Fatalf("a day on, keys cover %v only", until.Sub(later))
	}
}
