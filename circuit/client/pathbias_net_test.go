package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/internal/relaynet"
)

// biasNet runs dials, each on a circuit of its own, through a network of
// five relays whose only guard is relay 0, with faults set per relay. It
// stops once the guard is disabled or after dials dials, and returns the
// guard's status and the log.
func biasNet(t *testing.T, faults map[int]float64, dials int) (client.GuardStatus, string) {
	n := newExitNet(t, 5)
	n.onlyGuards(0)
	for i, f := range faults {
		n.setFault(i, f)
	}
	var logs relaynet.LogBuffer
	m := n.manager(client.Config{Guards: 1, BuildAttempts: 1,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	client.SetPathBiasMinimum(m, 30, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	guard := n.Relays[0].Host.ID()
	for i := range dials {
		st := m.GuardStatus()
		if len(st) > 1 || (len(st) == 1 && st[0].ID != guard) {
			t.Fatalf("guard status %+v, want relay 0 only", st)
		}
		if len(st) == 1 && !st[0].Disabled.IsZero() {
			break
		}
		dctx := client.WithIsolation(ctx, client.NewIsolationKey(fmt.Sprint(i)))
		// Dial returns at once (optimistic data); a request and its
		// echo make the circuit get built, or fail.
		if c, err := m.Dial(dctx, "tcp", net.JoinHostPort("127.0.0.1", n.echo)); err == nil {
			c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write([]byte("x")); err == nil {
				c.Read(make([]byte, 1))
			}
			c.Close()
		}
	}
	st := m.GuardStatus()
	if len(st) != 1 {
		t.Fatalf("guard status %+v, want relay 0 only", st)
	}
	return st[0], logs.String()
}

// A guard that destroys most of the circuits it carries is reported and
// taken out of use; an honest guard whose circuits fail now and then
// further on is not.
func TestPathBiasHostileGuardOnNetwork(t *testing.T) {
	st, logs := biasNet(t, map[int]float64{0: 0.8}, 200)
	t.Logf("hostile guard: %d of %d circuits built, disabled %v", st.Built, st.Circuits, !st.Disabled.IsZero())
	if st.Disabled.IsZero() {
		t.Fatalf("a guard failing 80 %% of its circuits is still in use: %+v", st)
	}
	if !strings.Contains(logs, "taken out of use") || !strings.Contains(logs, st.ID.String()) {
		t.Errorf("the guard's removal was not logged:\n%s", logs)
	}
	if strings.Contains(logs, "127.0.0.1") {
		t.Errorf("the log names a destination:\n%s", logs)
	}
}

func TestPathBiasHonestGuardOnLossyNetwork(t *testing.T) {
	faults := map[int]float64{1: 0.15, 2: 0.15, 3: 0.15, 4: 0.15}
	st, logs := biasNet(t, faults, 120)
	t.Logf("honest guard: %d of %d circuits built, %d of %d streams answered", st.Built, st.Circuits, st.Answered, st.Streams)
	if !st.Disabled.IsZero() || strings.Contains(logs, "a guard fails") {
		t.Fatalf("an honest guard was judged: %+v\n%s", st, logs)
	}
	if st.Circuits < 100 || st.Built == st.Circuits {
		t.Fatalf("%d of %d circuits built: the network was not lossy, or the builds were not counted", st.Built, st.Circuits)
	}
}
