package soak

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one run of the obol binary: its stdout is kept, its stderr (the
// log) goes to a file and is watched for the messages the run waits on.
type proc struct {
	cmd  *exec.Cmd
	out  watched // stdout
	log  watched // stderr, also appended to a file
	file *os.File
	done chan struct{} // closed once it has exited

	mu     sync.Mutex
	hwmKiB int // highest VmHWM read while it ran
}

// startProc runs bin with args; its log is appended to logPath.
func startProc(bin, logPath string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: exec.Command(bin, args...), file: f, done: make(chan struct{})}
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = io.MultiWriter(f, &p.log)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() {
		p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal reads the peak memory, then sends sig and waits up to wait for
// the exit; it reports whether the process has exited.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) bool {
	p.sampleHWM()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(wait):
		return false
	}
}

// kill ends the process at once and waits for it.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL, time.Minute)
}

// exitCode is the code it exited with, -1 while it runs or if a signal
// ended it.
func (p *proc) exitCode() int {
	if p.running() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// sampleHWM reads VmHWM, the peak resident set, from /proc.
func (p *proc) sampleHWM() {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil || !p.running() {
		return
	}
	kib := procKiB(string(b), "VmHWM:")
	p.mu.Lock()
	p.hwmKiB = max(p.hwmKiB, kib)
	p.mu.Unlock()
}

func (p *proc) peakKiB() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hwmKiB
}

// procKiB is the value of a "Key:   123 kB" line of /proc/PID/status.
func procKiB(status, key string) int {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// waitOut waits for a stdout line starting with prefix and returns the
// rest of it, trimmed.
func (p *proc) waitOut(ctx context.Context, prefix string, within time.Duration) (string, error) {
	var rest string
	err := p.waitUntil(ctx, "a line "+strconv.Quote(prefix), within, func() bool {
		for _, line := range strings.Split(p.out.String(), "\n") {
			if r, ok := strings.CutPrefix(line, prefix); ok {
				rest = strings.TrimSpace(r)
				return true
			}
		}
		return false
	})
	return rest, err
}

// waitLog waits until the log holds s.
func (p *proc) waitLog(ctx context.Context, s string, within time.Duration) error {
	return p.waitUntil(ctx, "log "+strconv.Quote(s), within, func() bool { return p.log.seen(s) })
}

func (p *proc) waitUntil(ctx context.Context, what string, within time.Duration, ok func() bool) error {
	deadline := time.Now().Add(within)
	for !ok() {
		select {
		case <-p.done:
			return fmt.Errorf("exited with %d before %s; log tail:\n%s", p.cmd.ProcessState.ExitCode(), what, p.log.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s within %v; log tail:\n%s", what, within, p.log.tail())
		}
	}
	return nil
}

// watched keeps the tail of what is written to it and remembers the
// messages in watchFor it has seen (slog writes each record at once).
type watched struct {
	mu   sync.Mutex
	buf  []byte
	hits map[string]bool
}

// Messages the soak waits on or counts.
const (
	msgPublished = `"msg":"descriptor published"`
	msgSettled   = `"msg":"payment channels settled"`
)

var watchFor = []string{msgPublished, msgSettled}

const tailBytes = 16 << 10

func (w *watched) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range watchFor {
		if bytes.Contains(b, []byte(s)) {
			if w.hits == nil {
				w.hits = map[string]bool{}
			}
			w.hits[s] = true
		}
	}
	w.buf = append(w.buf, b...)
	if len(w.buf) > 2*tailBytes {
		w.buf = append([]byte(nil), w.buf[len(w.buf)-tailBytes:]...)
	}
	return len(b), nil
}

func (w *watched) seen(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hits[s] || bytes.Contains(w.buf, []byte(s))
}

// String is what was written (stdout is short: all of it).
func (w *watched) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

func (w *watched) tail() string {
	s := w.String()
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// freePort returns a TCP port free on 127.0.0.1 just now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
