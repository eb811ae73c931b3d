package hidden

import (
	"context"
	"errors"
	"testing"
)

// A client whose introductions every intro point refuses for its rate
// (a flood spends the service's share of them) tries them all again after
// a pause, and gets through once a token is free; any other refusal, or
// the end of its context, ends the attempt after one round.
func TestIntroductionsRetriedWhileRateLimited(t *testing.T) {
	const n = 3
	never := func() bool { return false }

	calls := 0
	err := introduceEach(context.Background(), n, never, func(int) error {
		calls++
		if calls <= 2*n { // two rounds spent by the flood
			return errIntroRateLimited
		}
		return nil
	})
	if err != nil || calls != 2*n+1 {
		t.Fatalf("rate-limited twice: %v after %d tries, want success at try %d", err, calls, 2*n+1)
	}

	calls = 0
	other := errors.New("service did not come")
	err = introduceEach(context.Background(), n, never, func(i int) error {
		calls++
		if calls == 2 {
			return other
		}
		return errIntroRateLimited
	})
	if err == nil || calls != n {
		t.Fatalf("one intro point failed otherwise: %v after %d tries, want one round of %d", err, calls, n)
	}

	calls = 0
	ctx, cancel := context.WithCancel(context.Background())
	err = introduceEach(ctx, n, never, func(int) error {
		if calls++; calls == n {
			cancel() // the dial gives up during the pause
		}
		return errIntroRateLimited
	})
	if !errors.Is(err, errIntroRateLimited) || calls != n {
		t.Fatalf("context ended: %v after %d tries, want the refusal after %d", err, calls, n)
	}

	calls = 0
	lost := false
	err = introduceEach(context.Background(), n, func() bool { return lost }, func(int) error {
		calls++
		lost = true // the rendezvous circuit failed
		return errIntroRateLimited
	})
	if err == nil || calls != 1 {
		t.Fatalf("rendezvous lost: %v after %d tries, want to stop at once", err, calls)
	}
}
