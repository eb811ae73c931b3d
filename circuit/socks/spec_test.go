package socks

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// specRows returns the cells of the markdown table rows of
// specs/08-socks.md's appendix whose header starts with first.
func specRows(t *testing.T, first string) [][]string {
	t.Helper()
	doc, err := os.ReadFile("../../specs/08-socks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, app, ok := strings.Cut(string(doc), "## Appendix A.")
	if !ok {
		t.Fatal("no appendix A in specs/08-socks.md")
	}
	var rows [][]string
	in := false
	for _, line := range strings.Split(app, "\n") {
		if !strings.HasPrefix(line, "|") {
			in = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		switch {
		case cells[0] == first:
			in = true
		case in && !strings.HasPrefix(cells[0], "---"):
			rows = append(rows, cells)
		}
	}
	if len(rows) == 0 {
		t.Fatalf("no %q table in the appendix", first)
	}
	return rows
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("vector %q: %v", s, err)
	}
	return b
}

func TestSpecIsolationKeys(t *testing.T) {
	for _, r := range specRows(t, "user") {
		k := NewIsolationKey(r[0], r[1])
		if got := hex.EncodeToString(k[:]); got != r[2] {
			t.Errorf("key(%q, %q) = %s, spec says %s", r[0], r[1], got, r[2])
		}
	}
}

func TestSpecWireVectors(t *testing.T) {
	produce := map[string]func() []byte{
		"greeting":        func() []byte { return encodeGreeting(MethodNoAuth, MethodUserPass) },
		"method":          func() []byte { return []byte{version5, ChooseMethod([]byte{0, 2})} },
		"userpass":        func() []byte { return encodeUserPass("alice", "one") },
		"connect-name":    func() []byte { return encodeRequest5(CmdConnect, tgtHost("example.com", 443)) },
		"connect-v6":      func() []byte { return encodeRequest5(CmdConnect, tgtIP("2001:db8::1", 80)) },
		"reply-ruleset":   func() []byte { return AppendReply5(nil, ReplyCode5(ErrNotAllowed)) },
		"socks4a":         func() []byte { return encodeRequest4(CmdConnect, tgtHost("example.com", 80), "bob") },
		"reply4-rejected": func() []byte { return AppendReply4(nil, ReplyCode4(ErrNotAllowed)) },
	}
	seen := 0
	for _, r := range specRows(t, "id") {
		f, ok := produce[r[0]]
		if !ok {
			t.Errorf("spec vector %q has no producer", r[0])
			continue
		}
		seen++
		if got, want := f(), unhex(t, r[2]); !bytes.Equal(got, want) {
			t.Errorf("%s: produced %x, spec says %x", r[0], got, want)
		}
	}
	if seen != len(produce) {
		t.Errorf("%d of %d vectors found in the spec", seen, len(produce))
	}
	// The request vectors parse back to what they say.
	req, err := ReadRequest5(bytes.NewReader(encodeRequest5(CmdConnect, tgtHost("example.com", 443))))
	if err != nil || req.Target != tgtHost("example.com", 443) {
		t.Fatalf("connect-name parses to %+v, %v", req, err)
	}
}
