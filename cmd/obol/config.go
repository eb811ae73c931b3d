package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config files.
//
// A command's config file is YAML whose keys are the command's flag names
// without the dashes; every flag is a key and every key is a flag, so an
// operator learns one vocabulary:
//
//	data-dir: /var/lib/obol
//	listen:
//	  - /ip4/0.0.0.0/udp/7400/quic-v1
//	  - /ip4/0.0.0.0/tcp/7400
//	roles: [guard, exit]
//	exit-policy:
//	  - reject *:25
//	  - accept *:80,443
//
// A scalar value is set as the flag's text ("~/" at its start is the home
// directory, as in a shell); each item of a sequence is set as one
// occurrence of a repeatable flag, or joined with commas for a flag that
// takes a comma-separated list. Values go through the same checks
// as flags, so a bad value is refused with its key, its line, the value and
// why. Flags given on the command line override the file: a key is applied
// only when its flag was not given. Unknown keys, mappings as values and
// repeated keys are refused.

// configFlag is the flag that names the file.
const configFlag = "config"

// origin tells where each flag's value came from, for error messages about
// combinations of values.
type origin struct {
	file  string         // "" when no file was given
	lines map[string]int // flag name → line in file, for keys applied
}

// describe names the source of flag name's value as an operator should
// look for it: "key republish (relay.yaml:7)" or "flag -republish".
func (o *origin) describe(name string) string {
	if o != nil {
		if line, ok := o.lines[name]; ok {
			return fmt.Sprintf("key %s (%s:%d)", name, o.file, line)
		}
	}
	return "flag -" + name
}

// invalid reports a value refused because of other values, naming where it
// was set, and returns the usage exit code.
func (o *origin) invalid(fs *flag.FlagSet, name, value, why string) int {
	fmt.Fprintf(fs.Output(), "invalid value %q for %s: %s\n", value, o.describe(name), why)
	return exitUsage
}

// parseWithConfig registers --config on fs, parses args, then applies the
// config file (if one was named) to every flag the command line did not
// set. It returns the exit code to use when it fails (0 for -h).
func parseWithConfig(fs *flag.FlagSet, args []string) (*origin, int, bool) {
	path := fs.String(configFlag, "", "YAML config `file` whose keys are this command's flag names; flags override it")
	if code, ok := parse(fs, args); !ok {
		return nil, code, false
	}
	o := &origin{lines: map[string]int{}}
	if *path == "" {
		return o, 0, true
	}
	o.file = *path
	b, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintf(fs.Output(), "obol %s: config file: %v\n", fs.Name(), err)
		return nil, exitUsage, false
	}
	if err := applyConfig(fs, *path, b, o.lines); err != nil {
		fmt.Fprintf(fs.Output(), "obol %s: %v\n", fs.Name(), err)
		return nil, exitUsage, false
	}
	return o, 0, true
}

// applyConfig sets fs's flags from the YAML document b, skipping flags that
// are already set, and records the line of each key it applied.
func applyConfig(fs *flag.FlagSet, file string, b []byte, lines map[string]int) error {
	doc, err := parseConfigDoc(file, b)
	if err != nil || doc == nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	seen := map[string]bool{}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if err := checkKey(fs, file, k, seen); err != nil {
			return err
		}
		if given[k.Value] {
			continue // the command line wins
		}
		if err := setFromYAML(fs, file, k.Value, v); err != nil {
			return err
		}
		lines[k.Value] = k.Line
	}
	return nil
}

// parseConfigDoc parses b into its top-level mapping; nil for an empty file.
func parseConfigDoc(file string, b []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var root yaml.Node
	if err := dec.Decode(&root); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %v", file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:%d: only one YAML document is allowed", file, extra.Line)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping of keys to values at the top level", file, doc.Line)
	}
	return doc, nil
}

// checkKey refuses keys that are not flags of fs, and repeated keys.
func checkKey(fs *flag.FlagSet, file string, k *yaml.Node, seen map[string]bool) error {
	name := k.Value
	if k.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s:%d: a key must be a plain word", file, k.Line)
	}
	if seen[name] {
		return fmt.Errorf("%s:%d: key %s is given twice", file, k.Line, name)
	}
	seen[name] = true
	if fs.Lookup(name) == nil || name == configFlag {
		return fmt.Errorf("%s:%d: unknown key %q; known keys: %s", file, k.Line, name, strings.Join(configKeys(fs), ", "))
	}
	return nil
}

// configKeys are the keys a file for fs may hold.
func configKeys(fs *flag.FlagSet) []string {
	var keys []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != configFlag {
			keys = append(keys, f.Name)
		}
	})
	slices.Sort(keys)
	return keys
}

// setFromYAML sets flag name from a scalar or from each item of a
// sequence of scalars.
func setFromYAML(fs *flag.FlagSet, file, name string, v *yaml.Node) error {
	var items []*yaml.Node
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return fmt.Errorf("%s:%d: key %s has no value", file, v.Line, name)
		}
		items = []*yaml.Node{v}
	case yaml.SequenceNode:
		items = v.Content
		if err := checkItems(file, name, items); err != nil {
			return err
		}
		switch {
		case isCommaList(fs.Lookup(name)):
			var words []string
			for _, it := range items {
				words = append(words, it.Value)
			}
			items = []*yaml.Node{{Kind: yaml.ScalarNode, Value: strings.Join(words, ","), Line: v.Line}}
		case !repeatable(fs.Lookup(name)):
			return fmt.Errorf("%s:%d: key %s takes one value, not a list", file, v.Line, name)
		}
	default:
		return fmt.Errorf("%s:%d: key %s wants a value or a list of values, not a mapping", file, v.Line, name)
	}
	for _, it := range items {
		if err := fs.Set(name, yamlValue(fs.Lookup(name), it.Value)); err != nil {
			if isBool(fs.Lookup(name)) {
				err = errors.New("want true or false")
			}
			return fmt.Errorf("%s:%d: key %s: invalid value %q: %v", file, it.Line, name, it.Value, err)
		}
	}
	return nil
}

// checkItems refuses list items that are not plain values.
func checkItems(file, name string, items []*yaml.Node) error {
	for _, it := range items {
		if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
			return fmt.Errorf("%s:%d: key %s: a list item must be a plain value", file, it.Line, name)
		}
	}
	return nil
}

// repeatableValue is implemented by flag values that accumulate when the
// flag is given more than once.
type repeatableValue interface{ repeatable() }

func (multiaddrsValue) repeatable() {}
func (bootstrapValue) repeatable()  {}
func (rulesValue) repeatable()      {}

// repeatable reports whether f accumulates repeated values, so that each
// item of a YAML list is one occurrence of the flag.
func repeatable(f *flag.Flag) bool {
	_, ok := f.Value.(repeatableValue)
	return ok
}

// commaListValue is implemented by flag values that take a whole list as
// one comma-separated value (and replace, not accumulate).
type commaListValue interface{ commaList() }

func (rolesValue) commaList() {}

// isCommaList reports whether a YAML list for f is joined with commas.
func isCommaList(f *flag.Flag) bool {
	_, ok := f.Value.(commaListValue)
	return ok
}

// yamlValue is the flag text of a YAML scalar: YAML's yes/no and on/off
// for a boolean flag, and "~/" expanded.
func yamlValue(f *flag.Flag, v string) string {
	if isBool(f) {
		switch strings.ToLower(v) {
		case "yes", "on":
			return "true"
		case "no", "off":
			return "false"
		}
	}
	return expandHome(v)
}

// isBool reports whether f is a boolean flag.
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// expandHome replaces a leading "~/" with the user's home directory, as a
// shell would have done for the same value given as a flag.
func expandHome(v string) string {
	rest, ok := strings.CutPrefix(v, "~/")
	if !ok {
		return v
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return v
	}
	return filepath.Join(home, rest)
}
