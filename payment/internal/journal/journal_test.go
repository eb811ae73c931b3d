package journal

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestJournalReplayAndTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := Open(path, func([]byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := j.Append(map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	j.Close() // idempotent
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"n":`)
	f.Close()
	var got []int
	replay := func(line []byte) error {
		var v struct{ N int }
		if err := json.Unmarshal(line, &v); err != nil {
			return err
		}
		got = append(got, v.N)
		return nil
	}
	j, err = Open(path, replay)
	if err != nil || len(got) != 3 {
		t.Fatalf("replay: %v %v", got, err)
	}
	j.Append(map[string]int{"n": 3})
	j.Close()
	got = nil
	if _, err := Open(path, replay); err != nil || len(got) != 4 || got[3] != 3 {
		t.Fatalf("after the torn tail: %v %v", got, err)
	}
	os.WriteFile(path, []byte("{bad}\n{\"n\":1}\n"), 0o600)
	if _, err := Open(path, replay); err == nil {
		t.Fatal("corrupt record accepted")
	}
}

// A journal open in one place cannot be opened again until it is closed:
// two writers would interleave and truncate each other's records.
func TestOpenTwiceRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := Open(path, func([]byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, func([]byte) error { return nil }); !errors.Is(err, ErrInUse) {
		t.Fatalf("second open: %v, want ErrInUse", err)
	}
	j.Close()
	j2, err := Open(path, func([]byte) error { return nil })
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	j2.Close()
}
