package payment

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// nutsDir holds the published Cashu NUT test vectors, copied with their
// licence (see its README).
var nutsDir = filepath.Join("testdata", "cashu-nuts")

// mdBlock is one fenced code block of a markdown file and the prose that
// precedes it (since the previous block).
type mdBlock struct {
	Lang, Body, Prose string
}

// readMarkdownBlocks loads the fenced code blocks of a vectors file.
func readMarkdownBlocks(t testing.TB, name string) []mdBlock {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(nutsDir, name))
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var blocks []mdBlock
	var prose, body strings.Builder
	in, lang := false, ""
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && strings.HasPrefix(trimmed, "```"):
			in, lang = true, strings.TrimPrefix(trimmed, "```")
			body.Reset()
		case in && trimmed == "```":
			in = false
			blocks = append(blocks, mdBlock{Lang: lang, Body: body.String(), Prose: prose.String()})
			prose.Reset()
		case in:
			body.WriteString(line)
			body.WriteString("\n")
		default:
			prose.WriteString(line)
			prose.WriteString("\n")
		}
	}
	return blocks
}

// shellValues parses `key: value # comment` lines of a shell block; quotes
// are removed. Repeated keys are numbered in order: key, key#2, ...
func shellValues(body string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			// "r10 "9de3..."" style: key and value split by a space
			k, v, ok = strings.Cut(line, " ")
			if !ok {
				continue
			}
		}
		k = strings.TrimSpace(k)
		v = strings.Trim(strings.TrimSpace(v), `"`)
		key := k
		for n := 2; ; n++ {
			if _, dup := m[key]; !dup {
				break
			}
			key = k + "#" + strconv.Itoa(n)
		}
		m[key] = v
	}
	return m
}
