package circuit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

func TestReplayCache(t *testing.T) {
	c := NewReplayCache(3)
	e := func(i int) []byte { return []byte(fmt.Sprintf("ephemeral-%028d", i)) }
	for i := 0; i < 3; i++ {
		if err := c.Add(7, e(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add(7, e(1)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if !c.Seen(e(2)) || c.Seen(e(9)) {
		t.Fatal("Seen wrong")
	}
	if err := c.Add(7, e(3)); !errors.Is(err, ErrReplayFull) {
		t.Fatalf("full: %v", err)
	}
	if err := c.Add(8, e(3)); err != nil {
		t.Fatalf("next period: %v", err)
	}
	c.Retain(8)
	if c.Len(7) != 0 || c.Len(8) != 1 || c.Seen(e(0)) {
		t.Fatal("Retain kept a retired period")
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	c := NewReplayCache(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if c.Add(1, []byte(fmt.Sprint(i))) == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if accepted != 500 {
		t.Fatalf("%d accepted, want 500", accepted)
	}
}

// TestReplaySustainedRate drives the cache at 200 creates per second, in
// virtual time, across a whole 4-hour onion-key period and an hour of
// overlap with the next key: no fresh handshake may be refused and no
// replay accepted.
func TestReplaySustainedRate(t *testing.T) {
	const rate = 200
	hours := 4.0
	if raceEnabled { // the race detector makes 3.6 million creates take minutes
		hours = 0.5
	}
	period := int(hours * 3600 * rate) // creates in one key period
	overlap := period / 4              // creates while both keys are accepted
	c := NewReplayCache(0)
	eph := func(i int) []byte {
		b := make([]byte, 32)
		binary.BigEndian.PutUint64(b, uint64(i))
		copy(b[8:], "sustained-rate ephemeral")
		return b
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	create := func(key uint64, i int) {
		e := eph(i)
		if c.Seen(e) {
			t.Fatalf("create %d (second %d): fresh handshake seen as a replay", i, i/rate)
		}
		if err := c.Add(key, e); err != nil {
			t.Fatalf("create %d (second %d): fresh handshake refused: %v", i, i/rate, err)
		}
		if i%997 == 0 { // an attacker replays some earlier create
			j := rnd.IntN(i + 1)
			if !c.Seen(eph(j)) || !errors.Is(c.Add(key, eph(j)), ErrReplay) {
				t.Fatalf("create %d: replay of create %d accepted", i, j)
			}
		}
	}
	for i := 0; i < period; i++ {
		create(1, i)
	}
	c.Retain(1, 2) // the next key is published; the old one stays accepted
	for i := period; i < period+overlap; i++ {
		key := uint64(2)
		if i%2 == 0 { // clients with an older descriptor still use key 1
			key = 1
		}
		create(key, i)
	}
	for _, j := range []int{0, period - 1, period, period + overlap - 1} {
		if !c.Seen(eph(j)) {
			t.Fatalf("create %d forgotten while its key is accepted", j)
		}
	}
	if got := c.Len(1) + c.Len(2); got != period+overlap {
		t.Fatalf("%d entries, want %d", got, period+overlap)
	}
	if f := c.Fill(1); f >= 1 {
		t.Fatalf("period 1 is full (%.2f) at 200 creates/s", f)
	}
	c.Retain(2) // key 1 erased: its creates cannot be decrypted any more
	if c.Len(1) != 0 || c.Len(2) != overlap/2 {
		t.Fatalf("after retiring key 1: %d, %d entries", c.Len(1), c.Len(2))
	}
}

func TestRelayReplayFullFailsClosed(t *testing.T) {
	k := mustKey(t, "full")
	r, err := NewResponder(ResponderConfig{Rand: newDetRand("full-relay"), ReplayPerPeriod: 1}, []OnionKey{k})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, ErrReplayFull} {
		_, p, _ := NewBuild(newDetRand(fmt.Sprint("full", i)), []HopSpec{{OnionKey: k.Public}})
		_, _, err := r.Create(p)
		if !errors.Is(err, want) {
			t.Fatalf("create %d: %v, want %v", i, err, want)
		}
		if want != nil && DestroyReasonFor(err) != DestroyResourceLimit {
			t.Fatalf("reason %v", DestroyReasonFor(err))
		}
	}
}

// TestRelayConcurrentCreates runs creates from several goroutines while
// the onion keys rotate (run with -race).
func TestRelayConcurrentCreates(t *testing.T) {
	k1, k2 := mustKey(t, "conc-1"), mustKey(t, "conc-2")
	k2.Period = 2
	r, err := NewResponder(ResponderConfig{}, []OnionKey{k1})
	if err != nil {
		t.Fatal(err)
	}
	var payloads [][]byte
	for i := 0; i < 16; i++ {
		_, p, _ := NewBuild(newDetRand(fmt.Sprint("conc", i)), []HopSpec{{OnionKey: k1.Public}})
		payloads = append(payloads, p)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(payloads))
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range payloads {
				_, _, err := r.Create(append([]byte(nil), p...))
				errs <- err
			}
		}()
	}
	if err := r.SetOnionKeys([]OnionKey{k2, k1}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	ok, replays := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrReplay):
			replays++
		default:
			t.Fatal(err)
		}
	}
	if ok != len(payloads) || replays != len(payloads) {
		t.Fatalf("%d accepted, %d replays; want %d each", ok, replays, len(payloads))
	}
}
