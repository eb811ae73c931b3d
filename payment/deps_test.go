package payment

import (
	"os/exec"
	"strings"
	"testing"
)

// payment imports nothing else of this module (DESIGN.md, "Packages and the
// direction of imports").
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/obolnet/obol/") && p != "github.com/obolnet/obol/payment" {
			t.Errorf("payment depends on %s", p)
		}
	}
}
