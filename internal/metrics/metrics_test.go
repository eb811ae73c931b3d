package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obolnet/obol/internal/status"
)

// TestScrape serves a fixed snapshot and checks every figure on /metrics,
// including those fed through the payment and error hooks.
func TestScrape(t *testing.T) {
	snap := status.Snapshot{
		Node:    status.Node{Kind: status.KindRelay, Roles: "relay,exit"},
		Traffic: status.Traffic{CircuitsOpen: 3, StreamsOpen: 5, Channels: 2, Cells: 10, Bytes: 12800},
		DHT: status.DHT{RoutingTable: 7, KnownRelays: 8, Lookups: 4, LookupFailures: 1,
			Own: &status.OwnRecord{Seq: 42, Expires: time.Unix(2000000000, 0)}},
		Payments: &status.Payments{EarnedMsat: 1500, SettledMsat: 1000, Channels: map[string]int{"open": 2, "settled": 1}, Paused: 6},
		Errors:   map[string]uint64{"settlement postponed": 3},
		Builds:   &status.BuildTimes{BoundsMs: []float64{50, 200}, Counts: []uint64{2, 3, 1}, Count: 6, SumMs: 1500, TimedOut: 2},
	}
	src := status.SourceFunc(func(context.Context) status.Snapshot { return snap })
	srv := httptest.NewServer(Handler(NewRegistry(src)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, want := range []string{
		"obol_circuits_open 3", "obol_streams_open 5", "obol_link_channels 2",
		"obol_cells_forwarded_total 10", "obol_bytes_forwarded_total 12800",
		"obol_dht_routing_table_peers 7", "obol_dht_known_relays 8",
		"obol_dht_lookups_total 4", "obol_dht_lookup_failures_total 1",
		"obol_dht_own_descriptor_seq 42", "obol_dht_own_descriptor_expiry_seconds 2e+09",
		`obol_node_info{kind="relay",roles="relay,exit"} 1`,
		`obol_payments_msat_total{direction="earned"} 1500`, `obol_payments_msat_total{direction="settled"} 1000`,
		`obol_payments_msat_total{direction="spent"} 0`, "obol_payment_paused_circuits_total 6",
		`obol_payment_channels{state="open"} 2`, `obol_payment_channels{state="settled"} 1`,
		`obol_errors_total{kind="settlement postponed"} 3`,
		`obol_circuit_build_seconds_bucket{le="0.05"} 2`, `obol_circuit_build_seconds_bucket{le="0.2"} 5`,
		`obol_circuit_build_seconds_bucket{le="+Inf"} 6`, "obol_circuit_build_seconds_sum 1.5",
		"obol_circuit_build_seconds_count 6", "obol_circuit_build_timeouts_total 2",
		"# TYPE obol_circuit_build_seconds histogram",
		"# TYPE obol_cells_forwarded_total counter", "# TYPE obol_circuits_open gauge",
		"go_goroutines",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want+" ") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestRegistriesApart checks that two nodes in one process keep their own
// figures: nothing goes to the global registry.
func TestRegistriesApart(t *testing.T) {
	one := NewRegistry(status.SourceFunc(func(context.Context) status.Snapshot {
		return status.Snapshot{Traffic: status.Traffic{CircuitsOpen: 1}}
	}))
	two := NewRegistry(status.SourceFunc(func(context.Context) status.Snapshot {
		return status.Snapshot{Traffic: status.Traffic{CircuitsOpen: 2}}
	}))
	for i, reg := range []*prometheus.Registry{one, two} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "obol_circuits_open" {
				if got := mf.GetMetric()[0].GetGauge().GetValue(); got != float64(i+1) {
					t.Errorf("registry %d: circuits open %v", i+1, got)
				}
			}
		}
	}
}
