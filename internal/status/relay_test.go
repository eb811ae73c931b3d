package status_test

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/internal/status"
)

// TestRelayStatus boots a local network, sends traffic through circuits
// whose guard serves a status page and metrics, and checks what the
// operator sees: the JSON API, the Prometheus endpoint, the page in a real
// browser, and logs free of destinations and of the client.
func TestRelayStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := startWatchedNet(t, ctx)
	w.startTraffic(t)

	t.Run("api", func(t *testing.T) { checkAPI(t, w) })
	t.Run("metrics", func(t *testing.T) { checkMetrics(t, w) })
	t.Run("loopback only", func(t *testing.T) { checkHostRefused(t, w) })
	t.Run("chromium", func(t *testing.T) { checkPageInChromium(t, w) })
	t.Run("logs", func(t *testing.T) { checkLogs(t, w) })
}

// checkAPI: the relay's circuits with their neighbours, every relay of
// the network, traffic counters and throughput.
func checkAPI(t *testing.T, w *watchedNet) {
	s := waitStatus(t, w.statusURL, "4 relays and throughput", func(s status.Snapshot) bool {
		return len(s.Relays) == len(w.net.Relays) && len(s.Throughput) > 1 && s.Traffic.Bytes > 0
	})
	if s.Node.Kind != status.KindRelay || s.Node.PeerID != w.watched.ID().String() {
		t.Errorf("node %+v", s.Node)
	}
	if s.Traffic.CircuitsOpen < len(w.circs) || len(s.Circuits) != s.Traffic.CircuitsOpen {
		t.Errorf("%d circuits open, %d listed; want at least %d", s.Traffic.CircuitsOpen, len(s.Circuits), len(w.circs))
	}
	for _, c := range s.Circuits {
		if c.Prev != w.client.ID().String() || c.Next != w.middle.ID().String() || len(c.Path) != 0 {
			t.Errorf("circuit %+v, want prev %s (client) and next %s only", c, w.client.ID(), w.middle.ID())
		}
	}
	for _, id := range w.net.IDs() {
		if !slices.ContainsFunc(s.Relays, func(r status.Relay) bool { return r.PeerID == id.String() }) {
			t.Errorf("relay %s missing from the known relays", id)
		}
	}
	if s.Traffic.Cells == 0 || s.Traffic.Bytes != s.Traffic.Cells*1280 {
		t.Errorf("traffic %+v", s.Traffic)
	}
	if s.DHT.RoutingTable == 0 || s.DHT.Lookups == 0 {
		t.Errorf("dht %+v", s.DHT)
	}
	s = waitStatus(t, w.statusURL, "the own descriptor", func(s status.Snapshot) bool { return s.DHT.Own != nil })
	if s.DHT.Own.Seq == 0 || !s.DHT.Own.Expires.After(time.Now()) {
		t.Errorf("own descriptor %+v", s.DHT.Own)
	}
}

// checkMetrics scrapes /metrics and checks the figures move with traffic.
func checkMetrics(t *testing.T, w *watchedNet) {
	first := scrape(t, w.metrics)
	for _, name := range []string{"obol_circuits_open", "obol_cells_forwarded_total", "obol_bytes_forwarded_total", "obol_dht_routing_table_peers", "obol_dht_known_relays", "obol_link_channels"} {
		if first[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, first[name])
		}
	}
	info := 0.0
	for series, v := range first {
		if strings.HasPrefix(series, `obol_node_info{kind="relay",roles="relay,guard`) {
			info += v
		}
	}
	if info != 1 {
		t.Errorf("no node info for a relay and guard")
	}
	if first["go_goroutines"] == 0 || first["process_resident_memory_bytes"] == 0 {
		t.Error("Go and process collectors missing")
	}
	w.waitFetches(t, 2)
	if second := scrape(t, w.metrics); second["obol_bytes_forwarded_total"] <= first["obol_bytes_forwarded_total"] {
		t.Errorf("bytes forwarded went from %v to %v while traffic flowed", first["obol_bytes_forwarded_total"], second["obol_bytes_forwarded_total"])
	}
}

// scrape reads a Prometheus text exposition into name{labels} → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metric line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// checkHostRefused: a request naming another host (DNS rebinding) is
// refused; localhost is served.
func checkHostRefused(t *testing.T, w *watchedNet) {
	for host, want := range map[string]int{"evil.example": http.StatusForbidden, "localhost": http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, w.statusURL+"api/status", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %s, want %d", host, resp.Status, want)
		}
	}
}

// checkLogs: the relays' logs at info level name neither the destination
// nor the client, and hold no ecash token.
func checkLogs(t *testing.T, w *watchedNet) {
	logs := w.logs.String()
	if !strings.Contains(logs, "descriptor published") {
		t.Fatalf("logs do not look like relay logs:\n%s", logs)
	}
	_, port, _ := strings.Cut(w.dest, ":")
	for what, s := range map[string]string{
		"destination address": w.dest, "destination path": secretPath, "destination port": "port=" + port,
		"client peer ID": w.client.ID().String(), "Cashu token": "cashuA", "Cashu token (v4)": "cashuB",
	} {
		if strings.Contains(logs, s) {
			t.Errorf("logs show the %s (%q):\n%s", what, s, logs)
		}
	}
}
