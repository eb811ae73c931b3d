package hidden_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/obolnet/obol/hidden"
)

// A service that asks for a proof of work: the client reads the effort
// from the descriptor, solves it, and the service counts the proof.
func TestProofOfWorkIntroduction(t *testing.T) {
	tn := newTestNet(t, 5)
	n, _ := tn.endpoint()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Config: n, Key: newKey(t), PoW: true, PoWMinEffort: 2000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	body := []byte("worked for")
	serveHTTP(t, l, body)
	c, _ := tn.client()
	if got, err := get(t, c, l.Address()); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("%q %v", got, err)
	}
	if s := l.Status().Intro; s.Proved != 1 || s.Joined != 1 {
		t.Fatalf("introductions: %+v", s)
	}
}
