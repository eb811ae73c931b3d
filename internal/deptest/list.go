package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// listed is the part of `go list -json` output the rules need.
type listed struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// ModuleRoot returns the directory of the module that contains dir.
func ModuleRoot(dir string) (string, error) {
	cmd := exec.Command("go", "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		return "", errors.New("not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// Load runs `go list -deps` over every package of the module rooted at
// root and returns the edges between the module's own packages, test
// imports included.
func Load(root string) ([]Edge, error) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, stderr.String())
	}
	return parse(out)
}

// parse turns a stream of `go list -json` objects into the module's edges.
func parse(out []byte) ([]Edge, error) {
	var edges []Edge
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return edges, nil
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		from, ok := ours(p.ImportPath)
		if !ok {
			continue
		}
		edges = appendEdges(edges, from, p.Imports, false)
		edges = appendEdges(edges, from, p.TestImports, true)
		edges = appendEdges(edges, from, p.XTestImports, true)
	}
}

func appendEdges(edges []Edge, from string, imports []string, test bool) []Edge {
	for _, imp := range imports {
		if to, ok := ours(imp); ok && to != from {
			edges = append(edges, Edge{From: from, To: to, Test: test})
		}
	}
	return edges
}

// ours returns an import path relative to Module, if it is in Module.
func ours(path string) (string, bool) {
	if path == Module {
		return "", true
	}
	rel, ok := strings.CutPrefix(path, Module+"/")
	return rel, ok
}

// ImportersOf runs `go list -deps` over pkg (e.g. "./cmd/obol") in the
// module rooted at root and returns the packages that pkg links which
// import target directly, in the order go list reports them.
func ImportersOf(root, pkg, target string) ([]string, error) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports", pkg)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, stderr.String())
	}
	var importers []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return importers, nil
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		for _, imp := range p.Imports {
			if imp == target {
				importers = append(importers, p.ImportPath)
			}
		}
	}
}
