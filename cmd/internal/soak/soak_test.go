package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/obolnet/obol/internal/obolbin"
)

// buildObol is the obol binary, built once per test process.
func buildObol(t *testing.T) string { return obolbin.Build(t) }

// shortSoak is the soak the test command runs: 20 relays, 2 clients,
// 45 s of traffic, a relay churned every 10 s.
func shortSoak(bin, dir string) Config {
	cfg := Defaults()
	cfg.Binary, cfg.Dir = bin, dir
	cfg.Relays, cfg.Clients, cfg.Duration, cfg.Churn = 20, 2, 45*time.Second, 10*time.Second
	cfg.Traffic.WebUsers, cfg.Traffic.Think = 3, time.Second
	cfg.Traffic.BulkMin, cfg.Traffic.BulkMax = 2<<20, 8<<20
	cfg.Funds = 100_000
	return cfg
}

// TestSoakShort runs a short soak and checks it:
//   - no body ever differs from the one sent;
//   - at least 95% of the requests during which no relay was stopped
//     succeed (those a stopped relay's circuit carried may fail; the
//     proxy builds new circuits for the next ones), and both web and bulk
//     requests succeed;
//   - relays were churned, and every churned relay's replacement started
//     and published;
//   - after the stop every channel is settled at its relay (a relay that
//     could not reach the mint as it stopped, or was killed and replaced,
//     is started once more to settle), each relay redeemed every balance
//     it accepted, and not one sat is lost.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 20 relay and 2 proxy processes for about a minute")
	}
	// The data directories and logs stay when the test fails.
	dir, err := os.MkdirTemp("", "obol-soak-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	})
	bin := buildObol(t)
	cfg := shortSoak(bin, dir)
	cfg.MintURL = startMintProc(t, bin, dir)
	cfg.ChildLogLevel = "debug"
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		var b bytes.Buffer
		rep.WriteTable(&b)
		t.Logf("report:\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Requests {
		if strings.Contains(r.Err, errDiffers.Error()) {
			t.Errorf("%s request of %d bytes: %s", r.Kind, r.Size, r.Err)
		}
	}
	if c := rep.ClearOfChurn; c.Total == 0 || c.Rate() < 0.95 {
		t.Errorf("requests clear of churn succeeded %s, want at least 95%%", c)
	}
	if rep.Web.OK == 0 || rep.Bulk.OK == 0 {
		t.Errorf("web %s, bulk %s: want successes of both", rep.Web, rep.Bulk)
	}
	if len(rep.Churn) == 0 {
		t.Errorf("no relay was churned")
	}
	for _, e := range rep.Churn {
		if e.Err != "" {
			t.Errorf("churn of %s (%s, %s): %s", e.Relay, e.Signal, e.Action, e.Err)
		}
	}
	checkSettlement(t, rep.Settlement)
}

// startMintProc runs `obol mint` (this process has the race detector, the
// binary not) and returns its URL.
func startMintProc(t *testing.T, bin, dir string) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(dir, "mint")
	p, err := startProc(bin, filepath.Join(dir, "mint.log"), "mint", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--data-dir", mdir, "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.signal(syscall.SIGINT, time.Minute); p.kill() })
	url, err := p.waitOut(context.Background(), "mint URL: ", startWithin)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// testWriter sends a soak's progress to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func checkSettlement(t *testing.T, s Settlement) {
	t.Helper()
	if s.Err != "" {
		t.Errorf("settlement: %s", s.Err)
	}
	if s.Channels == 0 || s.Settled != s.Channels {
		t.Errorf("%d of %d channels settled at the relays", s.Settled, s.Channels)
	}
	if s.Pending != 0 || s.RelaysSat != s.EarnedSat || s.RelaysSat == 0 {
		t.Errorf("relays' wallets hold %d sat with %d operations pending; their ledgers accepted %d sat",
			s.RelaysSat, s.Pending, s.EarnedSat)
	}
	if !s.Balanced() {
		t.Errorf("money lost: %s", s.moneyLine())
	}
}

// TestRequestCompare checks the byte-exact check itself: a body equal to
// the generator's passes; one byte changed, one missing or one extra
// fails.
func TestRequestCompare(t *testing.T) {
	const n = 100_000
	body := make([]byte, n)
	newBody(n).Read(body)
	flipped := bytes.Clone(body)
	flipped[n/2] ^= 1
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"exact", body, true},
		{"one byte changed", flipped, false},
		{"short", body[:n-1], false},
		{"long", append(bytes.Clone(body), 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := 0
			err := compare(bytes.NewReader(tt.body), newBody(n), n, &got)
			if (err == nil) != tt.ok {
				t.Fatalf("compare: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestSummarize checks how requests are counted: a request during which
// a relay was stopped is not clear of churn; TTFB and rates are over
// completed requests only.
func TestSummarize(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reqs := []Request{
		{Kind: "web", Size: 1000, Start: t0, TTFBms: 10, Seconds: 1},
		{Kind: "web", Size: 1000, Start: t0.Add(5 * time.Second), Seconds: 2, Err: "unexpected EOF"},
		{Kind: "bulk", Size: 10e6, Start: t0, TTFBms: 1000, Seconds: 3},
	}
	churn := []ChurnEvent{{At: t0.Add(6 * time.Second), Relay: "relay7", Signal: "SIGKILL", Action: "fresh"}}
	var rep Report
	rep.summarize(reqs, churn, 10*time.Second)
	if rep.All != (Counts{3, 2}) || rep.Web != (Counts{2, 1}) || rep.Bulk != (Counts{1, 1}) || rep.ClearOfChurn != (Counts{2, 2}) {
		t.Errorf("counts: all %v web %v bulk %v clear %v", rep.All, rep.Web, rep.Bulk, rep.ClearOfChurn)
	}
	if rep.BulkMBps.P50 != 5 || rep.WebTTFB.P50 != 10 || rep.RequestsPerSecond != 0.3 {
		t.Errorf("bulk %v MB/s, web TTFB %v ms, %v requests/s", rep.BulkMBps.P50, rep.WebTTFB.P50, rep.RequestsPerSecond)
	}
	if rep.Errors["unexpected EOF"] != 1 {
		t.Errorf("errors %v", rep.Errors)
	}
	if !errors.Is(compareErr(), errDiffers) {
		t.Errorf("a differing body is not errDiffers")
	}
}

func compareErr() error {
	got := 0
	return compare(bytes.NewReader([]byte{1, 2, 3}), bytes.NewReader([]byte{1, 2, 4}), 3, &got)
}
