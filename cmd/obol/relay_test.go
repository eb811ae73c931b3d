package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/obolnet/obol/internal/node"
)

// TestRelayKeysPersist checks that a relay creates its data directory
// 0700 and key files 0600 on first run, stops cleanly when cancelled, and
// comes back with the same peer ID and onion key.
func TestRelayKeysPersist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "relay")
	first := runRelayOnce(t, dir)
	checkMode(t, dir, 0o700)
	for _, f := range []string{node.IdentityFile, node.OnionKeyFile} {
		checkMode(t, filepath.Join(dir, f), 0o600)
	}
	onion := readFile(t, filepath.Join(dir, node.OnionKeyFile))
	if second := runRelayOnce(t, dir); second != first {
		t.Errorf("peer ID after restart %s, want %s", second, first)
	}
	if again := readFile(t, filepath.Join(dir, node.OnionKeyFile)); string(again) != string(onion) {
		t.Error("onion key changed across a restart")
	}
}

// runRelayOnce starts a lone relay, reads its peer ID and stops it.
func runRelayOnce(t *testing.T, dir string) string {
	t.Helper()
	b := start(t, "relay", "--data-dir", dir, "--listen", loopback, "--log-level", "debug")
	id := b.waitOutput(t, "peer ID:")
	b.waitAddr(t)
	if code := b.stop(t); code != exitOK {
		t.Fatalf("relay exited with %d; stderr:\n%s", code, b.err.String())
	}
	checkNoKeys(t, b.err.String(), dir)
	return id
}

// checkNoKeys fails if a debug log shows the private keys of dir in hex
// or base64 (std, URL or raw), whole or as a 16-byte piece.
func checkNoKeys(t *testing.T, log, dir string) {
	t.Helper()
	onion := readFile(t, filepath.Join(dir, node.OnionKeyFile))
	ident, err := crypto.UnmarshalPrivateKey(readFile(t, filepath.Join(dir, node.IdentityFile)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ident.Raw()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range [][]byte{onion, raw[:32]} {
		for _, piece := range [][]byte{key, key[:16], key[16:32]} {
			for _, enc := range []string{hex.EncodeToString(piece), base64.StdEncoding.EncodeToString(piece)[:20], base64.RawURLEncoding.EncodeToString(piece)[:20]} {
				if strings.Contains(log, enc) {
					t.Fatalf("log shows private key material %q", enc)
				}
			}
		}
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", path, got, want)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRelayRefusesExposedKey checks that a key file others can read is
// refused rather than used, and that a too-open data directory is fixed.
func TestRelayRefusesExposedKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "relay")
	runRelayOnce(t, dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, node.IdentityFile)
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(context.Background(), "relay", "--data-dir", dir, "--listen", loopback)
	if code != exitFail || !strings.Contains(stderr, "readable by others") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit %d and a complaint about the key file's mode", code, stderr, exitFail)
	}
	checkMode(t, dir, 0o700)
}

// TestRelaysListsNetwork runs two relays from the command line, the second
// joining through the first, and lists them with `obol relays`, whose
// descriptor cache must then exist with mode 0600.
func TestRelaysListsNetwork(t *testing.T) {
	tmp := t.TempDir()
	a := start(t, "relay", "--data-dir", filepath.Join(tmp, "a"), "--listen", loopback, "--republish", "1s", "--lifetime", "1m")
	idA := a.waitOutput(t, "peer ID:")
	boot := a.waitAddr(t)
	b := start(t, "relay", "--data-dir", filepath.Join(tmp, "b"), "--listen", loopback, "--bootstrap", boot, "--roles", "relay,exit")
	idB := b.waitOutput(t, "peer ID:")

	clientDir := filepath.Join(tmp, "client")
	var out, stderr string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var code int
		code, out, stderr = runCmd(context.Background(), "relays", "--bootstrap", boot, "-n", "2", "--data-dir", clientDir, "--timeout", "10s")
		if code == exitOK && strings.Contains(out, idA) && strings.Contains(out, idB) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(out, idA) || !strings.Contains(out, idB) {
		t.Fatalf("relays never listed both %s and %s; stdout:\n%s\nstderr:\n%s", idA, idB, out, stderr)
	}
	for _, want := range []string{"PEER ID", "relay,exit", "relay,guard", "free", "1.0 MiB/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	checkMode(t, filepath.Join(clientDir, node.CacheFile), 0o600)
	for _, r := range []*background{a, b} {
		waitLog(t, r, `msg="descriptor published"`)
	}
}

// waitLog waits until the command's log holds s.
func waitLog(t *testing.T, b *background, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(b.err.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q:\n%s", s, b.err.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelaysUnreachableBootstrap checks that `obol relays` gives up with
// exit code 1 and says why when no bootstrap peer answers.
func TestRelaysUnreachableBootstrap(t *testing.T) {
	// A peer ID whose relay was never started, at a port nothing listens on.
	dead := "/ip4/127.0.0.1/udp/9/quic-v1/p2p/12D3KooWQ32pcyMGz4Ux1p88QTFjikZcVjYZvz2HiJeXQQFZQsF1"
	code, out, stderr := runCmd(context.Background(), "relays", "--bootstrap", dead, "--timeout", "2s")
	if code != exitFail || !strings.Contains(stderr, "no relay reachable") || out != "" {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit %d and the reason", code, out, stderr, exitFail)
	}
}
