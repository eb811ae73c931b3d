package node

import (
	"path/filepath"
	"testing"
	"time"
)

// Keys rotate every interval, stay answered one lifetime past their turn,
// are published with their not-after times, and survive a restart.
func TestOnionKeyRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), OnionKeyFile)
	rotate, life := 4*time.Hour, 3*time.Hour
	now := time.Unix(1_800_000_000, 0)
	k, err := loadOnionKeyring(path, rotate, life, now)
	if err != nil {
		t.Fatal(err)
	}
	first := k.CircuitKeys()
	if len(first) != 1 || first[0].Period != uint64(now.Add(rotate+life).Unix()) {
		t.Fatalf("first key %+v", first)
	}
	if changed, _ := k.Rotate(now.Add(time.Hour)); changed {
		t.Fatal("rotated before the interval")
	}
	if changed, _ := k.Rotate(now.Add(rotate)); !changed {
		t.Fatal("no rotation after the interval")
	}
	keys := k.CircuitKeys()
	if len(keys) != 2 || keys[0].Public == first[0].Public || keys[1].Public != first[0].Public {
		t.Fatalf("after rotation: %d keys, newest first expected", len(keys))
	}
	if pub := k.Published(); len(pub) != 2 || pub[1].NotAfter != int64(first[0].Period) {
		t.Fatalf("published %+v", pub)
	}
	// The old key retires once its not-after passes.
	k.Rotate(now.Add(rotate + life + time.Second))
	for _, ck := range k.CircuitKeys() {
		if ck.Public == first[0].Public {
			t.Fatal("retired key still offered")
		}
	}
	again, err := loadOnionKeyring(path, rotate, life, now.Add(rotate+life+time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if again.CircuitKeys()[0].Public != k.CircuitKeys()[0].Public {
		t.Fatal("current key changed across a restart")
	}
}
