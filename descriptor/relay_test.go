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

func TestOnionKeyAtPicksLongestLived(t *testing.T) {
	r := &Relay{OnionKeys: []OnionKey{
		{Key: [32]byte{1}, NotAfter: 200},
		{Key: [32]byte{2}, NotAfter: 300},
		{Key: [32]byte{3}, NotAfter: 50},
	}}
	k, ok := r.OnionKeyAt(time.Unix(100, 0))
	if !ok || k.Key[0] != 2 {
		t.Fatalf("got %v %v, want key 2", k, ok)
	}
	if _, ok := r.OnionKeyAt(time.Unix(400, 0)); ok {
		t.Fatal("expired keys must not be offered")
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
