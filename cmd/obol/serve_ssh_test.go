package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/internal/localnet"
)

// sshTransfer is how much random data goes each way in TestServeSSH.
const sshTransfer = 1 << 20

// Real ssh reaches a real sshd behind a hidden service: `obol serve`
// forwards the service's port 22 to sshd on loopback, and ssh dials the
// .obol name through `obol proxy` with nc as the ProxyCommand. ssh checks
// sshd's host key; a command's output and 1 MiB of random data up, down
// and both ways at once must come back byte for byte.
func TestServeSSH(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	sd := startSSHD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Relays: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	boot := n.Relays[0].Addrs()[0].String()
	svc := start(t, "serve", "--bootstrap", boot, "--target", sd.addr, "--port", "22", "--data-dir", t.TempDir())
	addr := strings.Fields(svc.waitOutput(t, "  address "))[0]
	p := start(t, "proxy", "--socks", "127.0.0.1:0", "--bootstrap", boot, "--data-dir", t.TempDir(), "--allow-same-subnet")
	socksAddr := p.waitOutput(t, "  SOCKS5/SOCKS4a on ")
	ssh := func(remote string, stdin []byte) (stdout []byte, err error) {
		cmd := sd.command(ctx, socksAddr, addr, "22", remote)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return out.Bytes(), sshError{err, errb.String()}
		}
		return out.Bytes(), nil
	}

	out, err := sshConnected(ctx, t, func() ([]byte, error) { return ssh("echo obol-$((6*7))", nil) })
	if err != nil || string(out) != "obol-42\n" {
		t.Fatalf("ssh to %s: output %q, %v", addr, out, err)
	}

	dir := t.TempDir()
	up, down, both := randomBytes(t, sshTransfer), randomBytes(t, sshTransfer), randomBytes(t, sshTransfer)
	upPath, downPath := filepath.Join(dir, "up"), filepath.Join(dir, "down")
	if out, err := ssh("cat > "+upPath, up); err != nil || len(out) != 0 {
		t.Fatalf("upload: output %q, %v", out, err)
	}
	if got := readFile(t, upPath); !bytes.Equal(got, up) {
		t.Fatalf("upload: sshd wrote %s", diffSummary(got, up))
	}
	writeFile(t, downPath, down)
	if out, err := ssh("cat "+downPath, nil); err != nil || !bytes.Equal(out, down) {
		t.Fatalf("download: %s, %v", diffSummary(out, down), err)
	}
	if out, err := ssh("cat", both); err != nil || !bytes.Equal(out, both) {
		t.Fatalf("echo: %s, %v", diffSummary(out, both), err)
	}
}

// sshConnected runs the first ssh session to a service just published.
// Until a replica of its descriptor is where the proxy looks, ssh cannot
// connect and exits with 255 (a remote command's own status is never
// that here); it is run again, a few times, and any other result is
// returned.
func sshConnected(ctx context.Context, t *testing.T, run func() ([]byte, error)) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		out, err := run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 255 || attempt == 10 || ctx.Err() != nil {
			return out, err
		}
		t.Logf("ssh did not connect, trying again: %v", err)
	}
}

// sshError is ssh's exit status with what it wrote to stderr.
type sshError struct {
	err    error
	stderr string
}

func (e sshError) Error() string { return e.err.Error() + ": " + strings.TrimSpace(e.stderr) }
func (e sshError) Unwrap() error { return e.err }

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// diffSummary says how got differs from want without printing either.
func diffSummary(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	if i == len(got) && i == len(want) {
		return "the same bytes"
	}
	return fmt.Sprintf("got %d bytes, want %d; they first differ at byte %d", len(got), len(want), i)
}
