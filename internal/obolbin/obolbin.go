// Package obolbin builds the obol command once per test process, for
// tests that run relays and proxies as processes of their own.
package obolbin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var binary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// Build builds the obol command as it is shipped (CGO-free, without
// the race detector) once per test process and returns its path; tests
// that run relays and proxies as processes of their own use it. It skips
// the test where there is no go tool.
func Build(tb testing.TB) string {
	tb.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		tb.Skip("no go tool to build the obol binary")
	}
	binary.once.Do(func() {
		// Built beside, then renamed onto one path per user and
		// checkout: test processes building at once each replace the
		// file atomically (a running binary keeps its own), no copy is
		// left behind, and two checkouts tested at once never run each
		// other's build.
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("obol-test-%d-%s", os.Getuid(), checkout(goTool)))
		if binary.err = os.MkdirAll(dir, 0o700); binary.err != nil {
			return
		}
		tmp, err := os.MkdirTemp(dir, "build-")
		if err != nil {
			binary.err = err
			return
		}
		defer os.RemoveAll(tmp)
		cmd := exec.Command(goTool, "build", "-o", filepath.Join(tmp, "obol"), "github.com/obolnet/obol/cmd/obol")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if binary.out, binary.err = cmd.CombinedOutput(); binary.err != nil {
			return
		}
		binary.path = filepath.Join(dir, "obol")
		binary.err = os.Rename(filepath.Join(tmp, "obol"), binary.path)
	})
	if binary.err != nil {
		tb.Fatalf("go build: %v\n%s", binary.err, binary.out)
	}
	return binary.path
}

// checkout names the module checkout being tested: a short hash of its
// go.mod's path.
func checkout(goTool string) string {
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(bytes.TrimSpace(out))
	return hex.EncodeToString(sum[:6])
}
