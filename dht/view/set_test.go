package view

import (
	"errors"
	"testing"
	"time"

	"github.com/obolnet/obol/descriptor"
)

// The highest sequence number wins; an invalid record changes nothing.
func TestSetOffer(t *testing.T) {
	a := newTestRelay(t, 1, "10.1.0.1")
	b := newTestRelay(t, 2, "10.2.0.1")
	s := NewSet(fixedClock(t0))
	forged := a.rec(t, 9, t0)
	forged[len(forged)-1] ^= 1
	steps := []struct {
		name string
		rec  []byte
		want Outcome
		err  error
		seq  uint64 // held for a afterwards
	}{
		{"first", a.rec(t, 5, t0), Added, nil, 5},
		{"same seq again", a.rec(t, 5, t0), Stale, nil, 5},
		{"lower seq", a.rec(t, 4, t0), Stale, nil, 5},
		{"higher seq", a.rec(t, 6, t0), Updated, nil, 6},
		{"forged signature", forged, Stale, descriptor.ErrSignature, 6},
		{"expired", a.sign(t, a.body(10, t0.Add(-2*time.Hour), time.Hour)), Stale, descriptor.ErrExpired, 6},
		{"truncated", a.rec(t, 11, t0)[:40], Stale, descriptor.ErrMalformed, 6},
		{"another relay", b.rec(t, 1, t0), Added, nil, 6},
	}
	for _, st := range steps {
		_, out, err := s.Offer(st.rec)
		if out != st.want || !errors.Is(err, st.err) {
			t.Fatalf("%s: outcome %v err %v, want %v %v", st.name, out, err, st.want, st.err)
		}
		if r, ok := s.Get(a.id); !ok || r.Seq != st.seq {
			t.Fatalf("%s: holds %v, want seq %d", st.name, r, st.seq)
		}
	}
	if s.Len() != 2 {
		t.Fatalf("%d relays held, want 2", s.Len())
	}
}

// Expired descriptors leave the view.
func TestSetExpiry(t *testing.T) {
	now := t0
	s := NewSet(func() time.Time { return now })
	a := newTestRelay(t, 1, "10.1.0.1")
	if _, _, err := s.Offer(a.rec(t, 1, t0)); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(time.Hour)
	if _, ok := s.Get(a.id); ok {
		t.Fatal("expired descriptor still served")
	}
	if _, ok := s.Record(a.id); ok {
		t.Fatal("expired record still served")
	}
	if len(s.Digest(0, 0, 10).Entries) != 0 {
		t.Fatal("expired descriptor listed")
	}
	s.Prune()
	if s.Len() != 0 {
		t.Fatal("expired descriptor not pruned")
	}
}

// A digest lists what moved since the client's cursor; a republish that
// changes nothing but times or onion keys is listed only once the record
// last listed is in the last sixteenth of its life, however many republishes
// came between; a cursor of another epoch starts over.
func TestSetDigest(t *testing.T) {
	now := t0
	s := NewSet(func() time.Time { return now })
	a := newTestRelay(t, 1, "10.1.0.1")
	b := newTestRelay(t, 2, "10.2.0.1")
	s.Offer(a.rec(t, 1, t0))
	s.Offer(b.rec(t, 1, t0))
	d := s.Digest(0, 0, 10)
	if len(d.Entries) != 2 || d.More {
		t.Fatalf("full digest %+v", d)
	}
	cur := d
	now = t0.Add(10 * time.Minute)
	s.Offer(a.rec(t, 2, now)) // a mere republish
	if d := s.Digest(cur.Epoch, cur.Next, 10); len(d.Entries) != 0 {
		t.Fatalf("a republish of unchanged content listed: %+v", d)
	}
	rekeyed := a.body(3, now, time.Hour)
	rekeyed.OnionKeys = append(rekeyed.OnionKeys, descriptor.OnionKey{Key: [32]byte{9}, NotAfter: now.Add(2 * time.Hour).Unix()})
	s.Offer(a.sign(t, rekeyed))
	if d := s.Digest(cur.Epoch, cur.Next, 10); len(d.Entries) != 0 {
		t.Fatalf("a republish with a key of a coming interval listed: %+v", d)
	}
	changed := a.body(4, now, time.Hour)
	changed.Bandwidth++
	s.Offer(a.sign(t, changed))
	d = s.Digest(cur.Epoch, cur.Next, 10)
	if len(d.Entries) != 1 || d.Entries[0] != (DigestEntry{Short(a.id), 4}) {
		t.Fatalf("changed content: digest %+v", d)
	}
	cur = d
	// A relay that lost its keys names others: clients must fetch it.
	lost := a.body(5, now, time.Hour)
	lost.Bandwidth++
	lost.OnionKeys = []descriptor.OnionKey{{Key: [32]byte{8}, NotAfter: now.Add(2 * time.Hour).Unix()}}
	s.Offer(a.sign(t, lost))
	d = s.Digest(cur.Epoch, cur.Next, 10)
	if len(d.Entries) != 1 || d.Entries[0] != (DigestEntry{Short(a.id), 5}) {
		t.Fatalf("keys replaced: digest %+v", d)
	}
	cur = d
	// b republishes every 10 minutes; its listed record (t0, an hour)
	// enters its last sixteenth at 56.25 minutes.
	for m := 10; m <= 50; m += 10 {
		now = t0.Add(time.Duration(m) * time.Minute)
		s.Offer(b.rec(t, uint64(m), now))
		if d := s.Digest(cur.Epoch, cur.Next, 10); len(d.Entries) != 0 {
			t.Fatalf("republish at %d min listed: %+v", m, d)
		}
	}
	now = t0.Add(56 * time.Minute)
	s.Offer(b.rec(t, 56, now))
	if d := s.Digest(cur.Epoch, cur.Next, 10); len(d.Entries) != 0 {
		t.Fatalf("republish at 56 min listed: %+v", d)
	}
	now = t0.Add(57 * time.Minute)
	s.Offer(b.rec(t, 57, now))
	d = s.Digest(cur.Epoch, cur.Next, 10)
	if len(d.Entries) != 1 || d.Entries[0] != (DigestEntry{Short(b.id), 57}) {
		t.Fatalf("renewal in the last sixteenth: digest %+v", d)
	}
	now = t0.Add(59 * time.Minute)
	s.Offer(b.rec(t, 59, now))
	if d := s.Digest(d.Epoch, d.Next, 10); len(d.Entries) != 0 {
		t.Fatalf("the renewal's republish listed again: %+v", d)
	}
	if d := s.Digest(cur.Epoch+1, cur.Next, 10); len(d.Entries) != 2 {
		t.Fatalf("another epoch: digest %+v, want everything", d)
	}
	if d := s.Digest(cur.Epoch, cur.Next+100, 10); len(d.Entries) != 2 {
		t.Fatalf("a cursor past the set's version: digest %+v, want everything", d)
	}
}

// A relay not heard from for Silent leaves the view before its record
// expires; a digest from a cursor lists it as Gone, a digest from the
// start does not list it at all; a record of it published Silent ago is
// not taken back; a new one is, and is listed.
func TestSetSilentRelayIsGone(t *testing.T) {
	now := t0
	s := NewSet(func() time.Time { return now })
	a := newTestRelay(t, 1, "10.1.0.1")
	b := newTestRelay(t, 2, "10.2.0.1")
	s.Offer(a.sign(t, a.body(1, t0, 24*time.Hour)))
	s.Offer(b.sign(t, b.body(1, t0, 24*time.Hour)))
	cur := s.Digest(0, 0, 10)
	for m := time.Duration(30); m < Silent/time.Minute+30; m += 30 { // b keeps republishing
		now = t0.Add(m * time.Minute)
		s.Offer(b.sign(t, b.body(uint64(m), now, 24*time.Hour)))
	}
	if _, ok := s.Get(a.id); ok {
		t.Fatal("a relay silent for Silent is still in the view")
	}
	if _, ok := s.Get(b.id); !ok {
		t.Fatal("a relay that republishes left the view")
	}
	d := s.Digest(cur.Epoch, cur.Next, 10)
	if len(d.Entries) != 1 || d.Entries[0] != (DigestEntry{Short(a.id), Gone}) {
		t.Fatalf("digest from a cursor %+v, want a gone", d)
	}
	if full := s.Digest(0, 0, 10); len(full.Entries) != 1 || full.Entries[0].ID != Short(b.id) {
		t.Fatalf("full digest %+v, want b alone", full)
	}
	if _, out, _ := s.Offer(a.sign(t, a.body(2, t0, 24*time.Hour))); out != Stale {
		t.Fatalf("a record published Silent ago taken back: %v", out)
	}
	if _, out, err := s.Offer(a.sign(t, a.body(3, now, 24*time.Hour))); out != Added || err != nil {
		t.Fatalf("a relay back: %v %v", out, err)
	}
	d = s.Digest(d.Epoch, d.Next, 10)
	if len(d.Entries) != 1 || d.Entries[0] != (DigestEntry{Short(a.id), 3}) {
		t.Fatalf("digest after the relay came back %+v", d)
	}
	if _, _, err := s.Offer(a.sign(t, a.body(Gone, now, time.Hour))); !errors.Is(err, descriptor.ErrField) {
		t.Fatalf("a record numbered Gone: %v", err)
	}
}

// A digest is cut into pages that together list every entry once.
func TestSetDigestPages(t *testing.T) {
	s := NewSet(fixedClock(t0))
	want := map[ShortID]bool{}
	for i := range 25 {
		r := newTestRelay(t, byte(i+1), "10.0.0.1")
		s.Offer(r.rec(t, 1, t0))
		want[Short(r.id)] = true
	}
	var epoch, since uint64
	got := map[ShortID]bool{}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		d := s.Digest(epoch, since, 10)
		for _, e := range d.Entries {
			if got[e.ID] {
				t.Fatalf("%x listed twice", e.ID)
			}
			got[e.ID] = true
		}
		epoch, since = d.Epoch, d.Next
		if !d.More {
			break
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d of %d listed", len(got), len(want))
	}
}
