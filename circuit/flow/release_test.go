package flow

import (
	"context"
	"testing"
	"time"
)

// Slots given back with Release do not stay in flight: a sender whose
// streams end between Acquire and send keeps its window.
func TestReleaseKeepsWindow(t *testing.T) {
	s := NewSender()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for range 10 * InitialCwnd {
		if err := s.Acquire(ctx); err != nil {
			t.Fatalf("window leaked: %v", err)
		}
		s.Release()
	}
	if s.inflight != 0 || s.sent != 0 || len(s.marks) != 0 {
		t.Fatalf("inflight %d, sent %d, marks %d after releasing every slot", s.inflight, s.sent, len(s.marks))
	}
}

func TestReleaseAfterClose(t *testing.T) {
	s := NewSender()
	if err := s.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close(nil)
	s.Release() // must not panic
}
