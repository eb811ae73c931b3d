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
	err := introduceEach(context.Background(), n, all, never, func(int) error {
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
	err = introduceEach(context.Background(), n, all, never, func(i int) error {
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
	err = introduceEach(ctx, n, all, never, func(int) error {
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
	err = introduceEach(context.Background(), n, all, func() bool { return lost }, func(int) error {
		calls++
		lost = true // the rendezvous circuit failed
		return errIntroRateLimited
	})
	if err == nil || calls != 1 {
		t.Fatalf("rendezvous lost: %v after %d tries, want to stop at once", err, calls)
	}
}

func all(int) bool { return true }

// Intro points on relays the directory lists are tried before those on
// relays it does not (gone, most likely: a circuit to one waits out a
// dial), each group in a random order.
func TestListedIntroPointsFirst(t *testing.T) {
	const n = 6
	listed := func(i int) bool { return i%2 == 1 }
	seenFirst := map[int]bool{}
	for range 200 {
		var order []int
		introduceEach(context.Background(), n, listed, func() bool { return false }, func(i int) error {
			order = append(order, i)
			return errors.New("no")
		})
		if len(order) != n {
			t.Fatalf("tried %v, want each of %d once", order, n)
		}
		for k, i := range order {
			if listed(i) != (k < n/2) {
				t.Fatalf("order %v: an unlisted intro point before a listed one", order)
			}
		}
		seenFirst[order[0]] = true
	}
	if len(seenFirst) != n/2 {
		t.Errorf("first tries %v: the listed ones are not in a random order", seenFirst)
	}
}
