package descriptor

import (
	"errors"
	"testing"
	"time"
)

func TestSignRejectsForeignKey(t *testing.T) {
	r := sampleRelay(testKey(1))
	if _, err := Sign(testKey(2), r); !errors.Is(err, ErrPeerID) {
		t.Fatalf("got %v, want ErrPeerID", err)
	}
}

func TestSignRejectsOversized(t *testing.T) {
	key := testKey(1)
	r := sampleRelay(key)
	for i := 0; i < 40; i++ {
		r.Addrs = append(r.Addrs, make([]byte, 120))
	}
	if _, err := Sign(key, r); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

// OnionKeyAt picks the current key of a schedule published ahead: the
// one that expires first among those valid a minute from now.
func TestOnionKeyAtPicksTheCurrentKey(t *testing.T) {
	r := &Relay{OnionKeys: []OnionKey{
		{Key: [32]byte{1}, NotAfter: 2000},
		{Key: [32]byte{2}, NotAfter: 3000},
		{Key: [32]byte{3}, NotAfter: 500},
	}}
	for _, c := range []struct {
		at   int64
		want byte // 0: none
	}{
		{100, 3},  // the oldest key is current
		{439, 3},  // 61 s left: still chosen
		{440, 1},  // a minute left: the next one
		{1990, 2}, // under a minute left of key 1
		{2999, 2}, // every key retires within the minute: the last one
		{3000, 0}, // expired keys are never offered
	} {
		k, ok := r.OnionKeyAt(time.Unix(c.at, 0))
		if c.want == 0 {
			if ok {
				t.Fatalf("at %d: got %v, want none", c.at, k)
			}
			continue
		}
		if !ok || k.Key[0] != c.want {
			t.Fatalf("at %d: got %v %v, want key %d", c.at, k, ok, c.want)
		}
	}
}

func TestAcceptsPort(t *testing.T) {
	r := sampleRelay(testKey(1))
	for p, want := range map[uint16]bool{80: true, 443: true, 8500: true, 22: false, 9001: false} {
		if got := r.AcceptsPort(p); got != want {
			t.Errorf("port %d: got %v want %v", p, got, want)
		}
	}
	r.Roles = RoleRelay
	if r.AcceptsPort(80) {
		t.Error("a non-exit accepts no port")
	}
}

func TestRoleString(t *testing.T) {
	if s := (RoleRelay | RoleExit).String(); s != "relay,exit" {
		t.Fatal(s)
	}
}
