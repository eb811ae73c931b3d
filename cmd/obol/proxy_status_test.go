package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/status"
)

// `obol proxy -status -metrics` serves the status page's API and
// Prometheus metrics: the relays it knows, its circuits with their paths
// and the bytes its streams carried.
func TestProxyStatusAndMetrics(t *testing.T) {
	cn := newCircuitNet(t, 4, circuitNetOptions{dht: true, roles: func(int) descriptor.Role {
		return descriptor.RoleGuard | descriptor.RoleExit
	}})
	b := start(t, "proxy", "--socks", "127.0.0.1:0", "--bootstrap", cn.bootstrap(), "--data-dir", t.TempDir(),
		"--status", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--allow-same-subnet")
	socksAddr := b.waitOutput(t, "  SOCKS5/SOCKS4a on ")
	page := strings.TrimSuffix(b.waitOutput(t, "status page: "), "/")
	metricsURL := b.waitOutput(t, "metrics: ")

	web := httpServer(t)
	d, err := proxy.SOCKS5("tcp", socksAddr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.(proxy.ContextDialer).DialContext}, Timeout: 30 * time.Second}
	resp, err := hc.Get("http://" + web + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	var snap status.Snapshot
	deadline := time.Now().Add(20 * time.Second)
	for {
		snap = getSnapshot(t, page+"/api/status")
		if snap.Traffic.Bytes > 0 && len(snap.Circuits) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if snap.Node.Kind != status.KindProxy || len(snap.Relays) != 4 {
		t.Errorf("status: kind %q, %d relays known; want proxy and 4", snap.Node.Kind, len(snap.Relays))
	}
	if len(snap.Circuits) == 0 || len(snap.Circuits[0].Path) != 3 {
		t.Errorf("status circuits %+v; want 3-hop paths", snap.Circuits)
	}
	if snap.Traffic.Bytes == 0 {
		t.Error("status counts no bytes after a request")
	}
	resp, err = http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "obol_bytes_forwarded_total") || !strings.Contains(string(body), `obol_node_info{kind="proxy"`) {
		t.Errorf("metrics lack obol_bytes_forwarded_total:\n%.2000s", body)
	}
	// The status page stays on loopback unless told otherwise.
	code, _, stderr := runCmd(context.Background(), "proxy", "--bootstrap", cn.bootstrap(), "--status", "0.0.0.0:0")
	if code != exitUsage || !strings.Contains(stderr, "listen on loopback") {
		t.Errorf("status off loopback: exit %d, %s", code, stderr)
	}
}

func getSnapshot(t *testing.T, url string) status.Snapshot {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s status.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
