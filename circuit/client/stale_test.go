package client_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

// A prebuilt circuit that can no longer be paid (PayConfig.Stale: its
// channels wait for a mint that is away) takes no new stream: the request
// gets a circuit of its own, or the refusal of the path's payment, rather
// than a circuit that the relays will tear down when its free allowance
// runs out. The manager then closes the stale circuit.
func TestStaleCircuitTakesNoStream(t *testing.T) {
	for _, stale := range []bool{false, true} {
		t.Run(map[bool]string{false: "fresh", true: "stale"}[stale], func(t *testing.T) {
			n := newExitNet(t, 3)
			var mintAway atomic.Bool
			var builds atomic.Int32
			pay := func(path []*descriptor.Relay) (client.PayConfig, error) {
				if mintAway.Load() {
					return client.PayConfig{}, errors.New("the mint cannot be reached")
				}
				builds.Add(1)
				return client.PayConfig{Hops: make([]client.HopPayment, len(path)), Stale: mintAway.Load}, nil
			}
			// Fresh: housekeeping runs once, at start, so no replacement
			// of the prebuilt circuit is built while the test counts
			// builds. Stale: it runs often, to close the stale circuit.
			tick := time.Hour
			if stale {
				tick = 20 * time.Millisecond
			}
			m := n.manager(client.Config{Prebuilt: 1, Pay: pay, Tick: tick})
			waitFor(t, "a prebuilt circuit", func() bool {
				cs := m.Circuits()
				return len(cs) == 1 && !cs[0].Used
			})
			mintAway.Store(stale)
			conn, err := m.DialIsolated(context.Background(), client.NewIsolationKey("a"), "tcp", net.JoinHostPort("127.0.0.1", n.echo))
			if stale {
				// The dial is optimistic: the refusal comes at the first
				// write or read.
				if err == nil {
					defer conn.Close()
					conn.SetDeadline(time.Now().Add(30 * time.Second))
					if _, err = conn.Write([]byte("ping")); err == nil {
						_, err = conn.Read(make([]byte, 4))
					}
				}
				if err == nil {
					t.Fatal("a request went to a circuit that cannot be paid")
				}
				t.Logf("refused: %v", err)
				waitFor(t, "the stale circuit closed", func() bool { return len(m.Circuits()) == 0 })
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			echoes(t, conn)
			if b := builds.Load(); b != 1 {
				t.Fatalf("%d builds; the request should have taken the prebuilt circuit", b)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s within 30 s", what)
}
