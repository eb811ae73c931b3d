package mint

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
)

// TestCashuTS checks the mint with a third-party wallet, @cashu/cashu-ts
// (interop/cashu-ts.mjs). It needs node and `npm ci` in interop/; run
// interop/run.sh, which installs and runs it; `make test` installs it too.
// Without them it is skipped, except under CI, where it fails.
func TestCashuTS(t *testing.T) {
	skip := t.Skip
	if os.Getenv("CI") != "" {
		skip = t.Fatal
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node not installed")
	}
	if _, err := os.Stat(filepath.Join("interop", "node_modules", "@cashu", "cashu-ts")); err != nil {
		skip("cashu-ts not installed: run payment/mint/interop/run.sh")
	}
	_, c := startMint(t, Config{})
	key, _ := btcec.NewPrivateKey()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "cashu-ts.mjs")
	cmd.Dir = "interop"
	cmd.Env = append(os.Environ(),
		"MINT_URL="+c.base,
		"PRIVKEY="+hex.EncodeToString(key.Serialize()),
		"PUBKEY="+hex.EncodeToString(key.PubKey().SerializeCompressed()),
	)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("cashu-ts: %v\n%s\n%s", err, out, stderr)
	}
	var r struct {
		Minted             uint64   `json:"minted"`
		Locked             uint64   `json:"locked"`
		ReceivedWithoutKey bool     `json:"receivedWithoutKey"`
		Received           uint64   `json:"received"`
		LockedStates       []string `json:"lockedStates"`
		MeltState          string   `json:"meltState"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("cashu-ts output %q: %v", out, err)
	}
	t.Logf("cashu-ts: %s", out)
	switch {
	case r.Minted != 64 || r.Locked != 20:
		t.Errorf("minted %d, locked %d", r.Minted, r.Locked)
	case r.ReceivedWithoutKey:
		t.Error("P2PK-locked token redeemed without the key")
	case r.Received != 20:
		t.Errorf("received %d of 20", r.Received)
	case r.MeltState != StatePaid:
		t.Errorf("melt state %s", r.MeltState)
	}
	for _, s := range r.LockedStates {
		if s != "SPENT" {
			t.Errorf("locked proof state %s", s)
		}
	}
}
