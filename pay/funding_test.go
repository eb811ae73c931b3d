package pay

import (
	"context"
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
			if err := c.waitFunding(context.Background(), s); err != nil {
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
	c.waitFunding(context.Background(), s)
	if waits[0] != 0 {
		t.Fatalf("a hop opened a minute after its circuit's start waits %v more", waits[0])
	}
}
