package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/internal/status"
)

// TestRelayStatusAndMetricsEndpoints runs `obol relay --status --metrics`
// and reads both endpoints, then `obol status` in text and JSON.
func TestRelayStatusAndMetricsEndpoints(t *testing.T) {
	b := start(t, "relay", "--data-dir", t.TempDir(), "--listen", loopback,
		"--status", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	page := b.waitOutput(t, "status page:")
	metricsURL := b.waitOutput(t, "metrics:")
	id := b.waitOutput(t, "peer ID:")
	addr := strings.TrimSuffix(strings.TrimPrefix(page, "http://"), "/")

	code, out, errOut := runCmd(context.Background(), "status", "--addr", addr)
	if code != exitOK {
		t.Fatalf("obol status: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"obol relay " + id, "circuits open", "PREVIOUS HOP", "relays known"} {
		if !strings.Contains(out, want) {
			t.Errorf("obol status output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCmd(context.Background(), "status", "--addr", addr, "--json")
	var s status.Snapshot
	if err := json.Unmarshal([]byte(out), &s); code != exitOK || err != nil || s.Node.PeerID != id {
		t.Errorf("obol status --json: exit %d, err %v, node %+v", code, err, s.Node)
	}

	w := start(t, "status", "--addr", addr, "--watch", "100ms")
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(w.out.String(), clearScreen) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if code := w.stop(t); code != exitOK || strings.Count(w.out.String(), "obol relay "+id) < 3 {
		t.Errorf("obol status --watch: exit %d, output:\n%s", code, w.out.String())
	}

	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `obol_node_info{kind="relay",roles="relay,guard"} 1`) {
		t.Errorf("metrics lack the node's info:\n%s", body)
	}
	if code := b.stop(t); code != exitOK {
		t.Errorf("relay exited with %d; stderr:\n%s", code, b.err.String())
	}
}

// TestStatusNoNode checks that obol status fails with a hint when nothing
// listens.
func TestStatusNoNode(t *testing.T) {
	code, _, errOut := runCmd(context.Background(), "status", "--addr", "127.0.0.1:1")
	if code != exitFail || !strings.Contains(errOut, "--status") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestRelayStatusPortTaken checks that a taken status port stops the relay
// at start.
func TestRelayStatusPortTaken(t *testing.T) {
	b := start(t, "relay", "--data-dir", t.TempDir(), "--listen", loopback, "--status", "127.0.0.1:0")
	addr := strings.TrimSuffix(strings.TrimPrefix(b.waitOutput(t, "status page:"), "http://"), "/")
	code, _, errOut := runCmd(context.Background(), "relay", "--data-dir", t.TempDir(), "--listen", loopback, "--status", addr)
	if code != exitFail || !strings.Contains(errOut, "status page") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestObserversLeaveNothingRunning checks that the metrics and status
// servers, their sampler and the extra goroutines end with the command.
func TestObserversLeaveNothingRunning(t *testing.T) {
	before := runtime.NumGoroutine()
	src := status.SourceFunc(func(context.Context) status.Snapshot {
		return status.Snapshot{Node: status.Node{Kind: status.KindRelay}}
	})
	o := observeFlags{metrics: "127.0.0.1:0", status: "127.0.0.1:0"}
	var out strings.Builder
	ob, err := o.open(src, &out, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	extraDone := false
	mainErr := make(chan error, 1)
	go func() {
		mainErr <- ob.run(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil },
			func(ctx context.Context) error { <-ctx.Done(); extraDone = true; return nil })
	}()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		_, url, _ := strings.Cut(line, ": ")
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cancel()
	if err := <-mainErr; err != nil || !extraDone {
		t.Fatalf("run: %v, extra done %v", err, extraDone)
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
