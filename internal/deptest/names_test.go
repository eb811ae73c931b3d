package deptest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConceptNamesDeclaredOnce checks the module's importable packages:
// no two declare a type of the same concept name.
func TestConceptNamesDeclaredOnce(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := ModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	decl, err := LoadNames(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Client", "Relay", "Payer"} { // the loader sees the module
		if len(decl[name]) == 0 {
			t.Fatalf("no package declares %s; the loader is broken", name)
		}
	}
	for _, v := range CheckNames(decl) {
		t.Error(v)
	}
}

// TestCheckNames runs the rule over synthetic declarations.
func TestCheckNames(t *testing.T) {
	tests := []struct {
		name string
		decl Declarations
		want string // the one violation; "" for none
	}{
		{"one each", Declarations{"Client": {"obol"}, "Network": {"sim"}}, ""},
		{"not a concept", Declarations{"Config": {"dht", "router", "sim"}}, ""},
		{"two files of one package", Declarations{"Node": {"dht", "dht"}}, ""},
		{"shared as allowed", Declarations{"Relay": {"descriptor", "obol"}}, ""},
		{"two clients", Declarations{"Client": {"obol", "hidden"}},
			"type Client is declared by hidden, obol: give all but one a name that says what it is"},
		{"a third relay", Declarations{"Relay": {"obol", "descriptor", "circuit"}},
			"type Relay is declared by circuit, descriptor, obol: give all but one a name that says what it is"},
		{"relay shared elsewhere", Declarations{"Relay": {"obol", "dht/dhttest"}},
			"type Relay is declared by dht/dhttest, obol: give all but one a name that says what it is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(CheckNames(tt.decl), "\n")
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLoadNamesFindsDuplicate builds a small module with the same path in
// a temporary directory and checks what the loader counts: types of
// importable packages, not those of internal/ or cmd/ packages, of test
// files, unexported ones or re-exporting aliases.
func TestLoadNamesFindsDuplicate(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"go.mod":                  "module " + Module + "\n\ngo 1.26\n",
		"obol.go":                 "package obol\n\nimport \"" + Module + "/payment/wallet\"\n\ntype Client struct{}\n\ntype Wallet = wallet.Wallet\n",
		"hidden/client.go":        "package hidden\n\ntype Client struct{}\n\ntype Network = struct{}\n",
		"payment/wallet/w.go":     "package wallet\n\ntype Wallet struct{}\n\ntype network struct{}\n",
		"sim/sim.go":              "package sim\n\ntype Network struct{}\n",
		"sim/sim_test.go":         "package sim\n\ntype Wallet struct{}\n",
		"internal/node/node.go":   "package node\n\ntype Client struct{}\n",
		"cmd/obol/main.go":        "package main\n\ntype Network struct{}\n\nfunc main() {}\n",
		"circuit/circuit.go":      "package circuit\n\ntype (\n\tConfig struct{}\n\tRelay  struct{}\n)\n",
		"descriptor/relay.go":     "package descriptor\n\ntype Relay struct{}\n",
		"descriptor/relay_alt.go": "package descriptor\n\ntype Config struct{}\n",
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
	decl, err := LoadNames(root)
	if err != nil {
		t.Fatal(err)
	}
	got := CheckNames(decl)
	want := []string{
		"type Client is declared by hidden, obol: give all but one a name that says what it is",
		"type Network is declared by hidden, sim: give all but one a name that says what it is",
		"type Relay is declared by circuit, descriptor: give all but one a name that says what it is",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if g := strings.Join(decl["Config"], " "); g != "circuit descriptor" {
		t.Errorf("Config declared by %q, want circuit and descriptor", g)
	}
	if g := strings.Join(decl["Wallet"], " "); g != "payment/wallet" {
		t.Errorf("Wallet declared by %q, want payment/wallet only", g)
	}
}
