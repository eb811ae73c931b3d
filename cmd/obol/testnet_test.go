package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestTestnetCheck runs `obol testnet --check` in-process: eight relays
// boot on loopback, a client must discover and look up every one, and
// pages must come through the proxy from an exit and a hidden service.
func TestTestnetCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code, out, stderr := runCmd(ctx, "testnet", "--check", "--relays", "8")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if strings.Contains(out, "FAIL") || !strings.Contains(out, "checks: 11 passed, 0 failed") {
		t.Errorf("checks did not all pass:\n%s", out)
	}
	for _, want := range []string{"relay 8/8 joined the DHT", "relay 8/8 published its descriptor", "a client discovered 8 of 8 relays"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestTestnetInterruptedWhileBooting checks that Ctrl-C during the boot
// stops the network quietly, and that --check then fails.
func TestTestnetInterruptedWhileBooting(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"testnet", "--relays", "4"}, exitOK},
		{[]string{"testnet", "--relays", "4", "--check"}, exitFail},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		code, out, stderr := runCmd(ctx, tt.args...)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.code, out, stderr)
		}
	}
}
