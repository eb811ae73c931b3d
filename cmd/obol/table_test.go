package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/descriptor"
)

// TestTable checks the relay table's formatting, sorted by peer ID
// ("a" and "b" print in base58 as 2g and 2h).
func TestTable(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1_000_000, 0)
	printRelays(&buf, []*descriptor.Relay{
		{PeerID: "b", Roles: descriptor.RoleRelay | descriptor.RoleExit, Bandwidth: 5 << 30, Published: now.Unix() - 90},
		{PeerID: "a", Roles: descriptor.RoleRelay, Bandwidth: 512, Published: now.Unix() + 3, Price: descriptor.Price{PerMiB: 5, PerCircuit: 100}},
	}, now)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		"PEER ID  ROLES       PRICE                          BANDWIDTH  AGE",
		"2g       relay       5 msat/MiB + 100 msat/circuit  512 B/s    0s",
		"2h       relay,exit  free                           5.0 GiB/s  1m30s",
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", buf.String())
	}
	for i := range want {
		if strings.TrimRight(lines[i], " ") != want[i] {
			t.Errorf("line %d = %q, want %q", i, lines[i], want[i])
		}
	}
}
