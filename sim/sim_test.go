package sim

import (
	"context"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// TestSmall runs a small network end to end in virtual time: relays
// publish, clients discover them, build circuits and fetch through exits.
func TestSmall(t *testing.T) {
	var rep *Report
	synctest.Test(t, func(t *testing.T) {
		var err error
		rep, err = Run(context.Background(), Config{Relays: 10, Clients: 2, Observe: 20 * time.Minute, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
	})
	rep.Print(os.Stderr)
	if rep.FetchSuccess < 1 {
		t.Errorf("fetch success %.3f, want every fetch through", rep.FetchSuccess)
	}
}
