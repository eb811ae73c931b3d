package status_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chromium finds Debian's chromium. Without it the browser check is
// skipped, except under CI, where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (scripts/install-test-deps.sh installs it)")
	}
	t.Skip("chromium is not installed; run scripts/install-test-deps.sh")
	return ""
}

// headless runs chromium on url with extra flags and returns its stdout.
// Virtual time lets the page's timers and fetches run for budget before
// the DOM is dumped or the screenshot taken.
func headless(t *testing.T, bin, url string, budget time.Duration, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=" + strconv.Itoa(int(budget.Milliseconds())),
	}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// textOf returns the text of the element with id in a dumped DOM.
func textOf(dom, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if m == nil {
		return ""
	}
	return m[1]
}

// attrOf returns attribute attr of the element with id.
func attrOf(dom, id, attr string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*\b` + regexp.QuoteMeta(attr) + `="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		return ""
	}
	return m[1]
}

// checkPageInChromium loads the status page in headless Chromium twice
// while traffic flows: the page shows the network's relays and the
// relay's circuits, polls its API, draws the graph, and its counters move.
func checkPageInChromium(t *testing.T, w *watchedNet) {
	bin := chromium(t)
	shot := filepath.Join(t.TempDir(), "status.png")
	defer func() {
		if t.Failed() {
			keep, err := os.MkdirTemp("", "obol-status-page-")
			if err == nil {
				b, _ := os.ReadFile(shot)
				os.WriteFile(filepath.Join(keep, "status.png"), b, 0o644)
				t.Logf("screenshot of the failing page: %s", filepath.Join(keep, "status.png"))
			}
		}
	}()
	headless(t, bin, w.statusURL, 3*time.Second, "--window-size=1280,1400", "--screenshot="+shot)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Errorf("no screenshot at %s (%v)", shot, err)
	} else {
		t.Logf("screenshot: %s", shot)
		if dir := os.Getenv("OBOL_SCREENSHOT_DIR"); dir != "" {
			b, _ := os.ReadFile(shot)
			os.WriteFile(filepath.Join(dir, "status.png"), b, 0o644)
		}
	}

	first := headless(t, bin, w.statusURL, 3*time.Second, "--dump-dom")
	if polls, _ := strconv.Atoi(attrOf(first, "updated", "data-polls")); polls < 2 {
		t.Fatalf("page polled /api/status %d times in 3s of virtual time, want at least 2; DOM:\n%s", polls, first)
	}
	if got := textOf(first, "peer"); got != w.watched.ID().String() {
		t.Errorf("page names peer %q, want %s", got, w.watched.ID())
	}
	for _, id := range w.net.IDs() {
		if !strings.Contains(first, `title="`+id.String()+`"`) {
			t.Errorf("page does not list relay %s", id)
		}
	}
	if n, _ := strconv.Atoi(textOf(first, "circuits-open")); n < len(w.circs) {
		t.Errorf("page shows %q circuits open, want at least %d", textOf(first, "circuits-open"), len(w.circs))
	}
	if !strings.Contains(first, `title="`+w.client.ID().String()+`"`) || !strings.Contains(first, "previous hop") {
		t.Error("page does not show the circuits' previous hops")
	}
	if pts := attrOf(first, "graph-line", "points"); strings.Count(pts, ",") < 2 {
		t.Errorf("throughput graph has points %q", pts)
	}
	w.waitFetches(t, 2) // traffic moved on
	second := headless(t, bin, w.statusURL, 2*time.Second, "--dump-dom")
	c1, _ := strconv.Atoi(textOf(first, "cells"))
	c2, _ := strconv.Atoi(textOf(second, "cells"))
	if c1 == 0 || c2 <= c1 {
		t.Errorf("cells on the page went from %d to %d while traffic flowed", c1, c2)
	}
}
