package status

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:9102": true, "127.0.0.1": true, "127.0.0.1:9102": true, "127.8.9.1:1": true,
		"[::1]:9102": true, "::1": true, "0.0.0.0:9102": false, "192.168.1.1:9102": false,
		"evil.example": false, "localhost.evil.example:9102": false, "": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// counting is a source whose traffic grows by 1280 bytes per call.
type counting struct{ n uint64 }

func (c *counting) Snapshot(context.Context) Snapshot {
	c.n++
	return Snapshot{Node: Node{Kind: KindRelay}, Traffic: Traffic{Cells: c.n, Bytes: c.n * 1280, CircuitsOpen: 1}}
}

// TestThroughputHistory checks rates and that the history is bounded.
func TestThroughputHistory(t *testing.T) {
	s := NewServer(ServerConfig{Source: &counting{}, History: 3})
	t0 := time.Unix(1000, 0)
	for i := range 6 {
		s.sample(context.Background(), t0.Add(time.Duration(i)*500*time.Millisecond))
	}
	h := s.Throughput()
	if len(h) != 3 {
		t.Fatalf("%d samples, want 3", len(h))
	}
	for _, p := range h {
		if p.BytesPerSec != 2560 || p.CellsPerSec != 2 || p.Circuits != 1 {
			t.Errorf("sample %+v, want 2560 B/s, 2 cells/s", p)
		}
	}
	if !h[2].Time.Equal(t0.Add(2500 * time.Millisecond)) {
		t.Errorf("newest sample at %v", h[2].Time)
	}
}

// TestPageSelfContained checks that the page loads nothing from elsewhere
// and that the server forbids it to.
func TestPageSelfContained(t *testing.T) {
	srv := httptest.NewServer(NewServer(ServerConfig{Source: &counting{}}).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, bad := range []string{"http://", "https://", "src=\"", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("page references %q", bad)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

// TestErrorCounter checks that warnings are counted by message at any
// log level and passed on only when the inner handler wants them.
func TestErrorCounter(t *testing.T) {
	c := NewErrorCounter()
	var out strings.Builder
	log := slog.New(c.Handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelError}))).With("relay", 1)
	log.Info("fine")
	log.Warn("no bootstrap peer answered; retrying")
	log.Warn("no bootstrap peer answered; retrying")
	log.Error("relay failed")
	got := c.Counts()
	if got["no bootstrap peer answered; retrying"] != 2 || got["relay failed"] != 1 || len(got) != 2 {
		t.Errorf("counts %v", got)
	}
	if strings.Contains(out.String(), "retrying") || !strings.Contains(out.String(), "relay failed") {
		t.Errorf("log output %q", out.String())
	}
}
