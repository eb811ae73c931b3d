package pay

import (
	"context"
	"slices"
	"testing"
	"time"
)

// The hops of one circuit are funded at times drawn independently in
// [FundDelay, FundMaxDelay] from the circuit's start: not at the build,
// not at one time for the whole circuit, and not one after another at a
// fixed spacing.
func TestFundingTimesDrawnPerHop(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var waits []time.Duration
	c := &Channels{cfg: ChannelsConfig{FundDelay: time.Second, FundMaxDelay: 8 * time.Second,
		Now:   func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}}
	const circuits = 50
	same := 0
	for range circuits {
		s := &fundSchedule{}
		waits = waits[:0]
		for range 3 {
			if err := c.waitFunding(context.Background(), s, nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, w := range waits {
			if w < time.Second || w > 8*time.Second {
				t.Fatalf("funding wait %v outside [1 s, 8 s]", w)
			}
		}
		if waits[0] == waits[1] && waits[1] == waits[2] {
			same++
		}
	}
	if same == circuits {
		t.Fatal("every circuit's hops were funded at one time")
	}
	// A later hop counts from the circuit's start, not from its own Open.
	s := &fundSchedule{}
	s.begin(now.Add(-time.Minute))
	waits = waits[:0]
	c.waitFunding(context.Background(), s, nil)
	if waits[0] != 0 {
		t.Fatalf("a hop opened a minute after its circuit's start waits %v more", waits[0])
	}
}

// A hurried funding does not wait out its drawn time; one whose circuit
// closes meanwhile fails with the circuit's context.
func TestFundingHurried(t *testing.T) {
	slept := make(chan struct{}, 1)
	c := &Channels{cfg: ChannelsConfig{FundDelay: time.Hour, FundMaxDelay: time.Hour, Now: time.Now,
		Sleep: func(ctx context.Context, d time.Duration) error {
			slept <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}}}
	urgent := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- c.waitFunding(context.Background(), nil, urgent) }()
	<-slept
	close(urgent)
	if err := <-done; err != nil {
		t.Fatalf("hurried funding: %v", err)
	}
	if err := c.waitFunding(context.Background(), nil, urgent); err != nil {
		t.Fatalf("funding hurried before its wait: %v", err)
	}
	if len(slept) != 0 {
		t.Fatal("a funding hurried before its wait slept")
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- c.waitFunding(ctx, nil, make(chan struct{})) }()
	<-slept
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("funding of a closed circuit: %v, want context.Canceled", err)
	}
}

// A standby fill gives every relay a channel before it gives any a
// second: the stocks it picks from are those with the fewest ready.
func TestStandbyFillsBreadthFirst(t *testing.T) {
	stocks := map[string]*stock{
		"a": {wanted: true, ready: make([]standbyChannel, 2)},
		"b": {wanted: true, ready: make([]standbyChannel, 1)},
		"c": {wanted: true, ready: make([]standbyChannel, 1)},
		"d": {wanted: false},                                  // no longer named
		"e": {wanted: true, ready: make([]standbyChannel, 4)}, // full
	}
	four := func(*stock) int { return 4 }
	got := fewestReady(stocks, four)
	if len(got) != 2 || len(got[0].ready) != 1 || len(got[1].ready) != 1 {
		t.Fatalf("picked %d stocks, want b and c (1 ready each)", len(got))
	}
	stocks["b"].ready = append(stocks["b"].ready, standbyChannel{})
	stocks["c"].ready = append(stocks["c"].ready, standbyChannel{})
	if got := fewestReady(stocks, four); len(got) != 3 {
		t.Fatalf("picked %d stocks with 2 ready each, want a, b and c", len(got))
	}
	for _, st := range stocks {
		st.ready = make([]standbyChannel, 4)
	}
	if got := fewestReady(stocks, four); len(got) != 0 {
		t.Fatalf("picked %d stocks with every stock full", len(got))
	}
}

// A relay whose standby channels are taken faster than Per a refill gets
// a larger stock: three times the takes of a mean refill interval over
// the last four, up to MaxPer; takes older than that are forgotten.
func TestStandbyStockFollowsTakes(t *testing.T) {
	cfg := StandbyConfig{Per: 2}
	cfg.defaults()
	now := time.Unix(1_800_000_000, 0)
	st := &stock{wanted: true}
	if got := st.target(cfg, now); got != 2 {
		t.Fatalf("target with no take: %d, want Per", got)
	}
	for i := range 8 { // 8 takes in the last 4 intervals: 2 a refill
		st.taken = append(st.taken, now.Add(-time.Duration(i)*cfg.Every/2))
	}
	slices.Reverse(st.taken)
	if got := st.target(cfg, now); got != 6 {
		t.Fatalf("target after 8 takes in 4 refill intervals: %d, want 3 × 2 = 6", got)
	}
	for range 100 {
		st.taken = append(st.taken, now)
	}
	if got := st.target(cfg, now); got != cfg.MaxPer {
		t.Fatalf("target after a burst: %d, want MaxPer %d", got, cfg.MaxPer)
	}
	if got := st.target(cfg, now.Add(takenHorizon*cfg.Every+time.Second)); got != 2 || len(st.taken) != 0 {
		t.Fatalf("target once the takes are older than the horizon: %d (%d remembered), want Per", got, len(st.taken))
	}
}
