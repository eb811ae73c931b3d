package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proc is an obol process the namespace mode runs (a relay or the
// proxy). `ip netns exec` execs obol in place, so the command's process
// is obol itself.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has ended

	mu    sync.Mutex // guards out and lines
	out   bytes.Buffer
	lines chan string // every line of its output, dropped if nobody reads
}

// startProc starts cmd, collecting its stdout and stderr.
func startProc(name string, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), lines: make(chan string, 256)}
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	go func() {
		cmd.Wait()
		w.Close()
	}()
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	return p, nil
}

// waitLine waits for the first line of output that starts with prefix
// and returns the rest of it; the process ending or ctx ending first is
// an error that shows its output.
func (p *proc) waitLine(ctx context.Context, prefix string) (string, error) {
	for {
		select {
		case l := <-p.lines:
			if s, ok := strings.CutPrefix(l, prefix); ok {
				return s, nil
			}
		case <-p.done:
			return "", fmt.Errorf("bench: %s ended before printing %q:\n%s", p.name, prefix, p.tail())
		case <-ctx.Done():
			return "", fmt.Errorf("bench: %s printed no %q: %w\n%s", p.name, prefix, ctx.Err(), p.tail())
		}
	}
}

// tail is the end of the process's output.
func (p *proc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// stop interrupts the process and kills it if it has not ended in 5 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// resetPeak makes the kernel's peak resident set of the process (VmHWM)
// start again from its current resident set.
func (p *proc) resetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

// peakRSSMiB is the process's peak resident set (VmHWM) in MiB.
func (p *proc) peakRSSMiB() (float64, error) { return p.statusMiB("VmHWM") }

// fileRSSMiB is the process's resident file-backed memory now (RssFile):
// mostly the pages of the binary it runs, which every process of that
// binary shares.
func (p *proc) fileRSSMiB() (float64, error) { return p.statusMiB("RssFile") }

// statusMiB reads a memory field of /proc/PID/status, in MiB.
func (p *proc) statusMiB(field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	kib, err := strconv.Atoi(strings.TrimSuffix(procField(string(b), field), " kB"))
	if err != nil {
		return 0, fmt.Errorf("bench: %s of %s: %w", field, p.name, err)
	}
	return float64(kib) / 1024, nil
}

// cpuTime is the CPU time (user and system) the process has used.
func (p *proc) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 14th and 15th of the whole line.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc stat of %s", p.name)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: bad /proc stat of %s", p.name)
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks, nil
}
