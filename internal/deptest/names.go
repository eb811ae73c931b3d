package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Concepts are the type names that name obol's main concepts. Each is
// declared by one importable package at most (Shared lists the
// exceptions), so that a name tells a reader which thing it is:
// circuit.Responder, not a second Relay. Per-package names such as
// Config, Stats or Error are not concepts and may repeat.
var Concepts = []string{
	"Client", "Relay", "Network", "Node", "Manager", "CircuitManager",
	"Payer", "Payee", "Payments", "Wallet", "MintClient", "Mint",
	"Standby", "StandbyPayer", "Receiver", "Server", "Router", "Listener",
	"Connector", "Responder", "Dialer", "Service", "Cache", "Publisher",
}

// Shared are the concept names that more than one package may declare,
// with the packages that may ("obol" is the module root).
var Shared = map[string][]string{
	// The relay descriptor, and the relay an embedder runs from it.
	"Relay": {"obol", "descriptor"},
}

// Declarations maps an exported type name to the packages that declare
// it ("obol" for the module root, otherwise the path in the module).
type Declarations map[string][]string

// CheckNames returns one message per concept name declared by more
// packages than Shared allows, sorted.
func CheckNames(decl Declarations) []string {
	var out []string
	for _, name := range Concepts {
		pkgs := slices.Clone(decl[name])
		sort.Strings(pkgs)
		pkgs = slices.Compact(pkgs)
		var extra []string
		for _, p := range pkgs {
			if !slices.Contains(Shared[name], p) {
				extra = append(extra, p)
			}
		}
		if len(pkgs) > 1 && len(extra) > 0 {
			out = append(out, fmt.Sprintf("type %s is declared by %s: give all but one a name that says what it is",
				name, strings.Join(pkgs, ", ")))
		}
	}
	sort.Strings(out)
	return out
}

// listedFiles is the part of `go list -json` output LoadNames needs.
type listedFiles struct {
	ImportPath string
	Dir        string
	GoFiles    []string
}

// LoadNames returns the exported types declared by the importable
// packages of the module rooted at root: every package but those under
// internal/ and cmd/, test files left out. An alias that re-exports a
// type under its own name (type Wallet = wallet.Wallet) declares nothing
// new and is not counted.
func LoadNames(root string) (Declarations, error) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Dir,GoFiles", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, stderr.String())
	}
	decl := Declarations{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedFiles
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return decl, nil
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		rel, ok := ours(p.ImportPath)
		if !ok || !importable(rel) {
			continue
		}
		if rel == "" {
			rel = Root
		}
		for _, f := range p.GoFiles {
			names, err := exportedTypes(filepath.Join(p.Dir, f))
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				decl[n] = append(decl[n], rel)
			}
		}
	}
}

// importable reports whether code outside the module may import the
// package at rel.
func importable(rel string) bool {
	for _, elem := range strings.Split(rel, "/") {
		if elem == "internal" || elem == "cmd" {
			return false
		}
	}
	return true
}

// exportedTypes returns the exported type names that file declares.
func exportedTypes(file string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, s := range g.Specs {
			ts := s.(*ast.TypeSpec)
			if !ts.Name.IsExported() || reexport(ts) {
				continue
			}
			names = append(names, ts.Name.Name)
		}
	}
	return names, nil
}

// reexport reports whether ts is an alias of another package's type of
// the same name.
func reexport(ts *ast.TypeSpec) bool {
	sel, ok := ts.Type.(*ast.SelectorExpr)
	return ts.Assign.IsValid() && ok && sel.Sel.Name == ts.Name.Name
}
