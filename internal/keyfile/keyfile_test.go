package keyfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A secret is made once with mode 0600 and read back the same; a file of
// the wrong size, or one others may read, is refused.
func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed")
	a, err := Load(path, 32)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode of a new secret: %v %v", fi.Mode(), err)
	}
	b, err := Load(path, 32)
	if err != nil || !bytes.Equal(a, b) || len(a) != 32 {
		t.Fatalf("read back %x, made %x: %v", b, a, err)
	}
	if _, err := Load(path, 16); err == nil || !strings.Contains(err.Error(), "not 16") {
		t.Fatalf("wrong size: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, 32); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("a secret others may read: %v", err)
	}
}
