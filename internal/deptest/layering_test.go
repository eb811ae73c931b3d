package deptest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestModuleLayering checks the module's real import graph.
func TestModuleLayering(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := ModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	edges, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(edges) == 0 {
		t.Fatal("go list reported no imports between the module's packages; the loader is broken")
	}
	t.Logf("%d imports between the module's packages", len(edges))
	for _, v := range Check(edges) {
		t.Errorf("layering: %s", v)
	}
}

// TestCheck runs the rules over synthetic import graphs.
func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		edge Edge
		want string // substring of the one violation; "" for none
	}{
		{"dht to descriptor", Edge{"dht", "descriptor", false}, ""},
		{"subpackage counts as parent", Edge{"circuit/socks", "descriptor", false}, ""},
		{"within a layer", Edge{"circuit/socks", "circuit", false}, ""},
		{"router to payment", Edge{"router", "payment", false}, ""},
		{"router to circuit subpackage", Edge{"router", "circuit/socks", false}, ""},
		{"hidden to dht", Edge{"hidden", "dht", false}, ""},
		{"pay to router", Edge{"pay", "router", false}, ""},
		{"pay to client", Edge{"pay", "circuit/client", false}, ""},
		{"cmd to anything", Edge{"cmd/obol", "hidden", false}, ""},
		{"cmd to sim", Edge{"cmd/obol", "sim", false}, ""},
		{"sim to router", Edge{"sim", "router", false}, ""},
		{"sim to dht", Edge{"sim", "dht", false}, ""},
		{"sim to module root", Edge{"sim", "", false}, ""},
		{"sim imports cmd", Edge{"sim", "cmd/internal/bench", false}, "sim may import only"},
		{"router imports sim", Edge{"router", "sim", false}, "router may import only"},
		{"cmd to local network", Edge{"cmd/obol", "internal/localnet", false}, ""},
		{"local network to dht helper", Edge{"internal/localnet", "dht/dhttest", false}, ""},
		{"module root to node", Edge{"", "internal/node", false}, ""},
		{"cmd to module root", Edge{"cmd/obol", "", false}, ""},
		{"helper to its own layer", Edge{"dht/dhttest", "dht", false}, ""},
		{"test to own helper", Edge{"dht", "dht/dhttest", true}, ""},
		{"test to higher helper", Edge{"circuit", "internal/localnet", true}, ""},
		{"test of router to mint", Edge{"router", "payment/mint", true}, ""},

		{"descriptor imports dht", Edge{"descriptor", "dht", false}, "descriptor may import only nothing of ours"},
		{"payment imports descriptor", Edge{"payment", "descriptor", false}, "payment may import only nothing of ours"},
		{"dht imports circuit", Edge{"dht", "circuit", false}, "dht may import only descriptor"},
		{"circuit subpackage imports dht", Edge{"circuit/socks", "dht", false}, "circuit may import only descriptor"},
		{"circuit imports payment", Edge{"circuit", "payment", false}, "circuit may import only descriptor"},
		{"router imports dht", Edge{"router", "dht", false}, "router may import only"},
		{"hidden imports router", Edge{"hidden", "router", false}, "hidden may import only"},
		{"pay imports dht", Edge{"pay", "dht", false}, "pay may import only"},
		{"router imports pay", Edge{"router", "pay", false}, "router may import only"},
		{"library imports cmd", Edge{"router", "cmd/internal/bench", false}, "router may import only"},
		{"test imports cmd non-helper", Edge{"router", "cmd/internal/bench", true}, "only cmd's tests may import cmd's packages"},
		{"cmd test imports cmd", Edge{"cmd/obol", "cmd/internal/bench", true}, ""},
		{"test imports a sibling layer", Edge{"circuit/link", "dht", true}, ""},
		{"test imports a higher layer", Edge{"descriptor", "router", true}, ""},
		{"test imports unknown", Edge{"dht", "util", true}, "util is in no layer"},
		{"library imports own helper", Edge{"dht", "dht/dhttest", false}, "test helper"},
		{"library imports mint", Edge{"router", "payment/mint", false}, "test helper"},
		{"library imports local network", Edge{"hidden", "internal/localnet", false}, "test helper"},
		{"helper imports higher layer", Edge{"dht/dhttest", "circuit/circuittest", false}, "dht may import only descriptor"},
		{"unknown importer", Edge{"wallet", "payment", false}, "wallet is in no layer"},
		{"unknown import", Edge{"dht", "util", false}, "util is in no layer"},
		{"module root imports cmd", Edge{"", "cmd/obol", false}, "obol may import only"},
		{"node imports module root", Edge{"internal/node", "", false}, "internal/node may import only"},
		{"unknown internal", Edge{"internal/misc", "dht", false}, "internal/misc is in no layer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check([]Edge{tt.edge})
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("%v: unexpected violation %q", tt.edge, got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("%v: got %q, want one violation containing %q", tt.edge, got, tt.want)
			}
		})
	}
}

// TestCheckGraph checks that every bad edge of a graph is reported once.
func TestCheckGraph(t *testing.T) {
	edges := []Edge{
		{"dht", "descriptor", false},
		{"dht", "circuit", false},
		{"dht", "circuit", false}, // reported once
		{"descriptor", "payment", false},
		{"cmd/obol", "dht", false},
	}
	got := Check(edges)
	if len(got) != 2 {
		t.Fatalf("got %d violations %q, want 2", len(got), got)
	}
}

// TestParse reads `go list -json` output, keeping only the module's edges.
func TestParse(t *testing.T) {
	out := `{"ImportPath":"fmt","Imports":["errors"]}
{"ImportPath":"github.com/obolnet/obol/dht","Imports":["fmt","github.com/obolnet/obol/descriptor"],"XTestImports":["github.com/obolnet/obol/dht","github.com/obolnet/obol/dht/dhttest"]}
{"ImportPath":"github.com/obolnet/obol/circuit","TestImports":["github.com/obolnet/obol/dht"]}`
	edges, err := parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Edge{
		{"dht", "descriptor", false},
		{"dht", "dht/dhttest", true},
		{"circuit", "dht", true},
	}
	if len(edges) != len(want) {
		t.Fatalf("edges %v, want %v", edges, want)
	}
	for i := range want {
		if edges[i] != want[i] {
			t.Errorf("edge %d = %v, want %v", i, edges[i], want[i])
		}
	}
	if v := Check(edges); len(v) != 0 {
		t.Errorf("violations %q, want none", v)
	}
}

// TestLoadFindsViolation builds a small module with the same path in a
// temporary directory, in which descriptor imports dht, and checks that
// the loader and the rules together report it.
func TestLoadFindsViolation(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"go.mod":              "module " + Module + "\n\ngo 1.26\n",
		"dht/dht.go":          "package dht\n\nimport _ \"" + Module + "/descriptor\"\n",
		"descriptor/desc.go":  "package descriptor\n\nimport _ \"" + Module + "/dht\"\n",
		"circuit/c.go":        "package circuit\n",
		"circuit/c_test.go":   "package circuit\n\nimport _ \"" + Module + "/cmd/lib\"\n",
		"payment/payment.go":  "package payment\n",
		"cmd/obol/main.go":    "package main\n\nimport _ \"" + Module + "/dht\"\n\nfunc main() {}\n",
		"router/router.go":    "package router\n\nimport _ \"" + Module + "/cmd/lib\"\n",
		"cmd/lib/lib.go":      "package lib\n",
		"dht/dhttest/dhtt.go": "package dhttest\n\nimport _ \"" + Module + "/dht\"\n",
		"dht/extra/extra.go":  "package extra\n\nimport _ \"" + Module + "/dht/dhttest\"\n",
	}
	for name, body := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edges, err := Load(root)
	if err == nil {
		t.Fatalf("go list accepted an import cycle; edges %v", edges)
	}
	// The cycle descriptor <-> dht makes go list fail; break it and look
	// at the rest.
	os.WriteFile(filepath.Join(root, "dht/dht.go"), []byte("package dht\n"), 0o644)
	edges, err = Load(root)
	if err != nil {
		t.Fatal(err)
	}
	got := Check(edges)
	want := []string{
		"circuit test imports cmd/lib: only cmd's tests may import cmd's packages other than test helpers",
		"descriptor imports dht: descriptor may import only nothing of ours",
		"dht/extra imports dht/dhttest: dht/dhttest is a test helper; only tests and cmd may import it",
		"router imports cmd/lib: router may import only circuit, payment, descriptor",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCommandLinksNoTestCode checks that no package of ours that the obol
// command links imports package testing: test helpers stay out of the
// shipped binary. (go-libp2p-kad-dht v0.42.2 imports testing itself, in
// dht_options.go, so testing is in the binary's dependencies all the same;
// that is the only importer allowed.)
func TestCommandLinksNoTestCode(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := ModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	importers, err := ImportersOf(root, "./cmd/obol", "testing")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range importers {
		switch {
		case p == Module || strings.HasPrefix(p, Module+"/"):
			t.Errorf("the obol command links %s, which imports testing", p)
		case p != "github.com/libp2p/go-libp2p-kad-dht":
			t.Errorf("the obol command links %s, which imports testing; only go-libp2p-kad-dht is known to", p)
		}
	}
}
