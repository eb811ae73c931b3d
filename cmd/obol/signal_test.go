package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runMainEnv makes the test binary run obol's main instead of the tests,
// so that a test can start the real command as a process and signal it.
const runMainEnv = "OBOL_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// process is obol running as a child process.
type process struct {
	cmd      *exec.Cmd
	out, err syncBuffer
}

func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(os.Args[0], args...)}
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

// waitFor waits until stdout contains s.
func (p *process) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stdout within 60s; stdout:\n%s\nstderr:\n%s", s, p.out.String(), p.err.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signal sends sig and returns the exit code.
func (p *process) signal(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit within 30s of %v; stderr:\n%s", sig, p.err.String())
		return -1
	}
}

// TestRelayStopsOnSignal checks that the relay process exits 0 on SIGINT
// and on SIGTERM, saying so in its log.
func TestRelayStopsOnSignal(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "relay")
			p := startProcess(t, "relay", "--data-dir", dir, "--listen", loopback, "--log-format", "json")
			p.waitFor(t, "peer ID:")
			if code := p.signal(t, sig); code != exitOK {
				t.Errorf("exit code %d after %v; stderr:\n%s", code, sig, p.err.String())
			}
			if !strings.Contains(p.err.String(), `"msg":"relay stopping"`) {
				t.Errorf("no JSON log line for the stop; stderr:\n%s", p.err.String())
			}
		})
	}
}

// TestTestnetStopsOnInterrupt runs `obol testnet` without --check: it
// stays up after showing the client's discoveries, until Ctrl-C.
func TestTestnetStopsOnInterrupt(t *testing.T) {
	p := startProcess(t, "testnet", "--relays", "3")
	p.waitFor(t, "Ctrl-C stops everything")
	for _, want := range []string{"a client discovered 3 of 3 relays", "relays --bootstrap /ip4/127.0.0.1/"} {
		if !strings.Contains(p.out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, p.out.String())
		}
	}
	if code := p.signal(t, syscall.SIGINT); code != exitOK {
		t.Errorf("exit code %d; stderr:\n%s", code, p.err.String())
	}
}
