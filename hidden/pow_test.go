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

// A connect that fails keeps no descriptor, so that the next one learns
// what the service states now: under a flood the service raises its
// proof-of-work effort, and a client that kept proving the effort of its
// cached descriptor would wait in the flood's queue until the descriptor
// expired (hours).
func TestFailedConnectForgetsDescriptor(t *testing.T) {
	tn := newTestNet(t, 5)
	l, _ := tn.listen(newKey(t))
	body := []byte("here")
	serveHTTP(t, l, body)
	c, _ := tn.client()
	if got, err := get(t, c, l.Address()); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("%q %v", got, err)
	}
	c.DropSession(l.Address())
	if !c.HasDescriptor(l.Address()) {
		t.Fatal("a client that connected holds no descriptor: the test shows nothing")
	}
	l.Close() // its intro points refuse every introduction from now on
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := c.Dial(ctx, "tcp", l.Address()+":80")
	if err == nil {
		conn.Close()
		t.Fatal("dialled a service that was closed")
	}
	t.Logf("dial: %v", err)
	if c.HasDescriptor(l.Address()) {
		t.Error("a connect that failed kept the service's descriptor")
	}
}
