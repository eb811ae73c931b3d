// Package deptest enforces the direction of imports that DESIGN.md fixes
// ("Packages and the direction of imports"), over the package graph that
// `go list -deps -test` reports.
//
// The rules are about the whole module rather than any one package, so
// they live in a package of their own, whose test (layering_test.go) runs
// `go list` once over ./... . It sits under internal/ so that nothing
// outside the module can import it, and nothing inside does.
//
// The rules:
//
//   - Every package of the module belongs to a layer: its first path
//     element (circuit/socks is circuit), cmd for everything under cmd/,
//     internal/x for internal/x and what is under it, obol for the module
//     root.
//     A package in no known layer is an error, so a new top-level package
//     is added here, and to DESIGN.md, on purpose.
//   - A layer's code imports only the layers listed for it in Layers. cmd
//     may import everything; nothing imports cmd.
//   - Test helper packages (Helpers) are imported only by tests, by cmd
//     and by other helpers.
//   - Test code (_test.go files) is not shipped and may import any library
//     layer and any helper, e.g. dht to build real hosts in a circuit test;
//     it may not import cmd's packages other than helpers (only cmd's own
//     tests may, as Go's internal/ rule also says).
//
// names.go adds a rule about names (names_test.go checks it): a type that
// names one of obol's main concepts (Concepts) is declared by one
// importable package only, so that the name says which thing it is.
package deptest

import (
	"fmt"
	"sort"
	"strings"
)

// Module is the module path the rules apply to.
const Module = "github.com/obolnet/obol"

// Layers maps each layer to the layers it may import (besides itself).
var Layers = map[string][]string{
	"descriptor":        nil,
	"payment":           nil,
	"dht":               {"descriptor", "internal/lazystream"},
	"circuit":           {"descriptor", "internal/lazystream"},
	"router":            {"circuit", "payment", "descriptor"},
	"hidden":            {"circuit", "dht", "descriptor"},
	"pay":               {"router", "circuit", "payment", "descriptor", "internal/keyfile"},
	"internal/node":     {"pay", "hidden", "router", "circuit", "dht", "payment", "descriptor", "internal/keyfile", "internal/status"},
	"obol":              {"internal/node", "pay", "hidden", "router", "circuit", "dht", "payment", "descriptor", "internal/keyfile", "internal/status"},
	"sim":               {"obol", "internal/node", "internal/pngplot", "pay", "hidden", "router", "circuit", "dht", "payment", "descriptor"},
	"cmd":               {"sim", "obol", "internal/node", "internal/localnet", "internal/relaynet", "internal/status", "internal/metrics", "internal/netemu", "internal/pngplot", "pay", "hidden", "router", "circuit", "dht", "payment", "descriptor", "internal/keyfile"},
	"internal/localnet": {"obol", "internal/node", "pay", "hidden", "router", "circuit", "dht", "payment", "descriptor"},
	"internal/relaynet": {"router", "circuit", "dht", "descriptor"},
	"internal/metrics":  {"internal/status"},
	"internal/status":   nil,
	"internal/deptest":  nil,
	"internal/keyfile":  nil,
	"internal/obolbin":  nil,
	"internal/nstest":   nil,
	// the bench's emulated network: namespaces linked over TUN devices
	"internal/netemu": nil,
	// libp2p streams that name their protocol in their first flight
	"internal/lazystream": nil,
	// the reports' PNG charts
	"internal/pngplot": nil,
}

// Root is the layer of the module's root package, package obol.
const Root = "obol"

// Helpers are the test helper packages, relative to Module.
var Helpers = []string{"dht/dhttest", "circuit/circuittest", "payment/mint", "internal/localnet", "internal/relaynet", "internal/obolbin", "internal/nstest"}

// Edge is one import: From imports To. Both are package paths relative to
// Module ("" is the module's root package). Test is set when the importer
// is test code (a _test.go file of From).
type Edge struct {
	From, To string
	Test     bool
}

func (e Edge) String() string {
	kind := "imports"
	if e.Test {
		kind = "test imports"
	}
	return fmt.Sprintf("%s %s %s", display(e.From), kind, display(e.To))
}

func display(p string) string {
	if p == "" {
		return "(module root)"
	}
	return p
}

// LayerOf returns the layer of a package path relative to Module, or "" if
// it is in none.
func LayerOf(p string) string {
	if p == "" {
		return Root
	}
	first, rest, _ := strings.Cut(p, "/")
	if first == "internal" {
		if second, _, _ := strings.Cut(rest, "/"); second != "" {
			first = "internal/" + second
		}
	}
	if _, ok := Layers[first]; ok {
		return first
	}
	return ""
}

// IsHelper reports whether p is a test helper package (or inside one).
func IsHelper(p string) bool {
	for _, h := range Helpers {
		if p == h || strings.HasPrefix(p, h+"/") {
			return true
		}
	}
	return false
}

// Check returns one message per edge that breaks a rule, sorted.
func Check(edges []Edge) []string {
	seen := map[string]bool{}
	for _, e := range edges {
		if msg := checkEdge(e); msg != "" {
			seen[msg] = true
		}
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func checkEdge(e Edge) string {
	from, to := LayerOf(e.From), LayerOf(e.To)
	switch {
	case from == "":
		return fmt.Sprintf("%s: %s is in no layer of DESIGN.md; add it there and to deptest.Layers", e, display(e.From))
	case to == "":
		return fmt.Sprintf("%s: %s is in no layer of DESIGN.md; add it there and to deptest.Layers", e, display(e.To))
	case e.Test:
		return checkTestEdge(e, from, to)
	case IsHelper(e.To) && from != "cmd" && !IsHelper(e.From):
		return fmt.Sprintf("%s: %s is a test helper; only tests and cmd may import it", e, e.To)
	case from != to && !allowed(from, to):
		return fmt.Sprintf("%s: %s may import only %s", e, from, allowedList(from))
	}
	return ""
}

// checkTestEdge: tests may import every library layer and every helper,
// but cmd's packages only from cmd.
func checkTestEdge(e Edge, from, to string) string {
	if to == "cmd" && from != "cmd" && !IsHelper(e.To) {
		return fmt.Sprintf("%s: only cmd's tests may import cmd's packages other than test helpers", e)
	}
	return ""
}

func allowed(from, to string) bool {
	for _, l := range Layers[from] {
		if l == to {
			return true
		}
	}
	return false
}

func allowedList(layer string) string {
	if len(Layers[layer]) == 0 {
		return "nothing of ours"
	}
	return strings.Join(Layers[layer], ", ")
}
