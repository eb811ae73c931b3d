package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/internal/relaynet"
)

// syncBuffer is a buffer safe for a command writing while a test reads.
type syncBuffer = relaynet.LogBuffer

// runCmd runs the obol command line args in-process and returns its exit
// code, stdout and stderr.
func runCmd(ctx context.Context, args ...string) (int, string, string) {
	var out, errb syncBuffer
	code := run(ctx, args, env{stdout: &out, stderr: &errb, now: time.Now})
	return code, out.String(), errb.String()
}

// background is a command running in a goroutine.
type background struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the command has returned
	code   int           // its exit code, once done is closed
	out    syncBuffer
	err    syncBuffer
}

// start runs args in the background until stop is called.
func start(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.code = run(ctx, args, env{stdout: &b.out, stderr: &b.err, now: time.Now})
	}()
	t.Cleanup(func() { b.stop(t) })
	return b
}

// stop cancels the command (as SIGINT would) and returns its exit code.
func (b *background) stop(t *testing.T) int {
	t.Helper()
	b.cancel()
	select {
	case <-b.done:
		return b.code
	case <-time.After(30 * time.Second):
		t.Fatalf("command did not stop within 30s; stderr:\n%s", b.err.String())
		return -1
	}
}

// waitOutput waits until stdout holds a line starting with prefix and
// returns the rest of that line.
func (b *background) waitOutput(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(b.out.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return strings.TrimSpace(rest)
			}
		}
		select {
		case <-b.done:
			t.Fatalf("command exited with %d before printing %q; stderr:\n%s", b.code, prefix, b.err.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no line starting with %q within 30s; stdout:\n%s\nstderr:\n%s", prefix, b.out.String(), b.err.String())
	return ""
}

// loopback makes a relay listen on loopback with ephemeral ports.
const loopback = "/ip4/127.0.0.1/udp/0/quic-v1,/ip4/127.0.0.1/tcp/0"

// waitAddr waits for the relay's first loopback /p2p/ address.
func (b *background) waitAddr(t *testing.T) string {
	t.Helper()
	return "/ip4/127.0.0.1/" + b.waitOutput(t, "  /ip4/127.0.0.1/")
}
