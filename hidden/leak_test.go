package hidden_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A service and a client that are closed leave no goroutine of this
// package behind, nor does the network they ran on once it is stopped.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("network", func(t *testing.T) { // its cleanups run before the count
		tn := newTestNet(t, 5)
		l, _ := tn.listen(newKey(t))
		body := []byte("leak check")
		serveHTTP(t, l, body)
		c, _ := tn.client()
		if got, err := get(t, c, l.Address()); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%q %v", got, err)
		}
		c.Close()
		l.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if n := runtime.NumGoroutine(); n <= before+10 && !strings.Contains(stacks(), "obol/hidden.") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%d goroutines left (before %d)\n%s", runtime.NumGoroutine(), before, stacks())
}

func stacks() string {
	buf := make([]byte, 1<<20)
	s := string(buf[:runtime.Stack(buf, true)])
	// The test's own frames name the package too; keep only other goroutines.
	var out []string
	for _, g := range strings.Split(s, "\n\n") {
		if !strings.Contains(g, "TestNoGoroutineLeak") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
