package payment

import (
	"os/exec"
	"strings"
	"testing"
)

// payment, payment/mint and payment/wallet import nothing of this module
// outside payment (DESIGN.md, "Packages and the direction of imports").
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	out, err := exec.Command("go", "list", "-deps", "./...").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/obolnet/obol/") && p != "github.com/obolnet/obol/payment" &&
			!strings.HasPrefix(p, "github.com/obolnet/obol/payment/") {
			t.Errorf("payment depends on %s", p)
		}
	}
}
