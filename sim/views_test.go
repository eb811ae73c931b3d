package sim

import (
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func set(ids ...string) map[peer.ID]bool {
	m := map[peer.ID]bool{}
	for _, id := range ids {
		m[peer.ID(id)] = true
	}
	return m
}

func TestSnapshot(t *testing.T) {
	live := set("a", "b", "c", "d")
	tests := []struct {
		name                      string
		views                     []map[peer.ID]bool
		complete, least, stale, j float64
	}{
		{"consensus", []map[peer.ID]bool{set("a", "b", "c", "d"), set("a", "b", "c", "d")}, 1, 1, 0, 1},
		{"disjoint halves", []map[peer.ID]bool{set("a", "b"), set("c", "d")}, 0.5, 0.5, 0, 0},
		{"one stale", []map[peer.ID]bool{set("a", "b", "c", "x"), set("a", "b", "c", "d")}, 0.875, 0.75, 0.125, 0.6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snapshot(tt.views, live)
			if s.Completeness != tt.complete || s.CompletenessMin != tt.least || s.Stale != tt.stale || s.Agreement != tt.j {
				t.Errorf("got %+v, want completeness %v (least %v), stale %v, agreement %v", s, tt.complete, tt.least, tt.stale, tt.j)
			}
		})
	}
}

// TestAnonymitySet: a path of relays only one client knows names that
// client (route fingerprinting); a path from a complete view names none.
func TestAnonymitySet(t *testing.T) {
	views := []map[peer.ID]bool{set("g1", "m", "e", "x"), set("g2", "m", "e"), set("g1", "m", "e"), set("g1", "m")}
	guards := []map[peer.ID]bool{set("g1"), set("g2"), set("g3"), set("g1")}
	tests := []struct {
		path           []string
		byView, byBoth int
	}{
		{[]string{"g1", "m", "e"}, 2, 1},
		{[]string{"g1", "m", "x"}, 1, 1},
		{[]string{"g2", "m", "e"}, 1, 1},
		{[]string{"g1", "m"}, 3, 2},
		{[]string{"y"}, 0, 0},
	}
	for _, tt := range tests {
		var path []peer.ID
		for _, s := range tt.path {
			path = append(path, peer.ID(s))
		}
		v, b := anonymitySet(path, views, guards)
		if v != tt.byView || b != tt.byBoth {
			t.Errorf("path %v: sets %d, %d; want %d, %d", tt.path, v, b, tt.byView, tt.byBoth)
		}
	}
}

func TestDist(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	d := distOf(ds)
	if d.N != 100 || d.P50 != 50 || d.P95 != 95 || d.Max != 100 {
		t.Errorf("got %+v", d)
	}
	if (distOf(nil) != Dist{}) {
		t.Error("an empty sample has a distribution")
	}
}

func TestTorModelGrowsWithRelays(t *testing.T) {
	for _, f := range []func(int) float64{torClientBytesPerDay, torRelayBytesPerHour} {
		a, b := f(1000), f(7000)
		if math.Abs(b/a-7) > 1e-9 {
			t.Errorf("the model is not linear in relays: %v, %v", a, b)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Relays: 3},
		{Relays: -1},
		{SybilFraction: 1.5},
		{CrashRate: -1},
		{Republish: 4 * time.Hour},
		{RTT: [][]int{{1}}},
		{RelayBandwidth: [2]uint64{10, 1}},
		{RelayConns: -1},
		{RelayConns: 4},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if low, high := relayConns(Config{RelayConns: 64}); low != 32 || high != 64 {
		t.Errorf("RelayConns 64: watermarks %d, %d", low, high)
	}
	if low, high := relayConns(Config{}); low != relayConnLow || high != relayConnHigh {
		t.Errorf("default watermarks %d, %d, want obol relay's", low, high)
	}
}
