package circuit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestReplayCache(t *testing.T) {
	c := NewReplayCache(3)
	m := minuteOf(testTime)
	e := func(i int) []byte { return []byte(fmt.Sprintf("ephemeral-%028d", i)) }
	for i := 0; i < 3; i++ {
		if err := c.Add(m, testTime, e(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add(m, testTime, e(1)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if err := c.Add(m+3, testTime, e(1)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay under another minute: %v", err)
	}
	if !c.Seen(testTime, e(2)) || c.Seen(testTime, e(9)) {
		t.Fatal("Seen wrong")
	}
	if err := c.Add(m, testTime, e(3)); !errors.Is(err, ErrReplayFull) {
		t.Fatalf("full: %v", err)
	}
	if c.Len() != 3 || c.Fill() != 1 {
		t.Fatalf("Len %d, Fill %.2f", c.Len(), c.Fill())
	}
}

// A create is accepted within MaxCreateSkew of the relay's clock either
// way, and a create once accepted is refused for as long as its minute is:
// after that by its time, also when the relay's clock is set back.
func TestReplayCacheWindow(t *testing.T) {
	c := NewReplayCache(100)
	m := minuteOf(testTime)
	e := func(i int) []byte { return []byte(fmt.Sprintf("ephemeral-%028d", i)) }
	for i, tc := range []struct {
		minute uint32
		want   error
	}{
		{m - skewMinutes - 1, ErrClockSkew},
		{m + skewMinutes + 1, ErrClockSkew},
		{m - skewMinutes, nil},
		{m + skewMinutes, nil},
		{m, nil},
	} {
		if err := c.Add(tc.minute, testTime, e(i)); !errors.Is(err, tc.want) {
			t.Fatalf("minute %+d: %v, want %v", int(tc.minute)-int(m), err, tc.want)
		}
	}
	// Six minutes on, minutes m-5 … m have left the window: their entries
	// are gone, and a replay of one is refused by its time.
	later := testTime.Add(6 * time.Minute)
	if err := c.Add(m, later, e(4)); !errors.Is(err, ErrClockSkew) {
		t.Fatalf("replay after its window: %v", err)
	}
	if c.Len() != 1 || c.Seen(later, e(2)) || !c.Seen(later, e(3)) {
		t.Fatalf("after the window moved: %d entries, minute m-5 seen %v, m+5 seen %v", c.Len(), c.Seen(later, e(2)), c.Seen(later, e(3)))
	}
	if err := c.Add(m+skewMinutes, later, e(3)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay within its window: %v", err)
	}
	// The relay's clock set back: the dropped minutes stay refused.
	if err := c.Add(m, testTime, e(4)); !errors.Is(err, ErrClockSkew) {
		t.Fatalf("replay after the clock went back: %v", err)
	}
	if err := c.Add(m+1, testTime, e(5)); err != nil {
		t.Fatalf("fresh create after the clock went back: %v", err)
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	c := NewReplayCache(0)
	m := minuteOf(testTime)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if c.Add(m+uint32(g), testTime, []byte(fmt.Sprint(i))) == nil {
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

// TestReplaySustainedRate drives the cache in virtual time at 200 creates
// per second for 20 minutes, from clients whose clocks are up to
// MaxCreateSkew off either way, and replays earlier creates as an attacker
// would, with their own minute: no fresh create may be refused and no
// replay accepted, and the cache holds only the window's creates.
func TestReplaySustainedRate(t *testing.T) {
	const rate = 200
	const seconds = 20 * 60
	c := NewReplayCache(0)
	eph := func(i int) []byte {
		b := make([]byte, 32)
		binary.BigEndian.PutUint64(b, uint64(i))
		copy(b[8:], "sustained-rate ephemeral")
		return b
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	skew := func() time.Duration { return time.Duration(rnd.Int64N(int64(2*MaxCreateSkew))) - MaxCreateSkew }
	minutes := make([]uint32, 0, rate*seconds)
	peak := 0
	for i := 0; i < rate*seconds; i++ {
		now := testTime.Add(time.Duration(i) * time.Second / rate)
		e := eph(i)
		if c.Seen(now, e) {
			t.Fatalf("create %d (second %d): fresh handshake seen as a replay", i, i/rate)
		}
		minutes = append(minutes, minuteOf(now.Add(skew())))
		if err := c.Add(minutes[i], now, e); err != nil {
			t.Fatalf("create %d (second %d): fresh handshake refused: %v", i, i/rate, err)
		}
		if i%97 == 0 { // an attacker replays a create of the last 12 minutes
			j := i - rnd.IntN(min(i+1, rate*60*12))
			err := c.Add(minutes[j], now, eph(j))
			switch inWindow := minutes[j]+skewMinutes >= minuteOf(now); {
			case inWindow && !errors.Is(err, ErrReplay):
				t.Fatalf("create %d: replay of create %d within its window: %v", i, j, err)
			case !inWindow && !errors.Is(err, ErrClockSkew):
				t.Fatalf("create %d: replay of create %d after its window: %v", i, j, err)
			}
		}
		peak = max(peak, c.Len())
	}
	// A create is held until its minute leaves the window: 5 minutes on
	// average with these clocks, 11 at most.
	if want := rate * 60 * 12; peak > want {
		t.Fatalf("the cache held %d entries, more than %d", peak, want)
	}
	t.Logf("%d creates, at most %d held (%.3f of the default bound)", rate*seconds, peak, float64(peak)/DefaultReplayEntries)
}

func TestRelayReplayFullFailsClosed(t *testing.T) {
	k := mustKey(t, "full")
	r, err := NewResponder(ResponderConfig{Now: testClock, Rand: newDetRand("full-relay"), ReplayEntries: 1}, []OnionKey{k})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, ErrReplayFull} {
		_, p, _ := NewBuild(newDetRand(fmt.Sprint("full", i)), testTime, []HopSpec{{OnionKey: k.Public}})
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
	r, err := NewResponder(ResponderConfig{Now: testClock}, []OnionKey{k1})
	if err != nil {
		t.Fatal(err)
	}
	var payloads [][]byte
	for i := 0; i < 16; i++ {
		_, p, _ := NewBuild(newDetRand(fmt.Sprint("conc", i)), testTime, []HopSpec{{OnionKey: k1.Public}})
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
