package hidden_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/relaynet"
)

// TestMain lets the test binary run as a lone hidden service, so that a
// benchmark can flood a service that does not share a process (its
// scheduler, its garbage collector) with the flood and the relays.
func TestMain(m *testing.M) {
	if os.Getenv("OBOL_TEST_HS_PROCESS") == "1" {
		if err := runServiceProcess(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "service process:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// serviceSpec is what the service process is told on its first line: the
// relays of the test network and the service's proof-of-work settings.
type serviceSpec struct {
	Relays      []*descriptor.Relay `json:"relays"`
	Addrs       map[string][]string `json:"addrs"` // peer ID → multiaddrs
	PoW         bool                `json:"pow"`
	MinEffort   uint32              `json:"min_effort"`
	AdjustEvery time.Duration       `json:"adjust_every"`
}

// serviceReport is the process's answer to "status".
type serviceReport struct {
	Status     hidden.Status `json:"status"`
	CPUSeconds float64       `json:"cpu_s"` // user + system since the start
	RSSKiB     int64         `json:"rss_KiB"`
	PeakRSSKiB int64         `json:"peak_rss_KiB"`
}

// runServiceProcess reads a serviceSpec, listens as a new hidden service
// on the relays it names, answers every connection with a fixed kilobyte
// (serveFixed), writes the service's address as its first line, then
// answers each "status" line with a serviceReport. It closes the service
// and returns when in closes.
func runServiceProcess(in io.Reader, out io.Writer) error {
	r := bufio.NewReader(in)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return err
	}
	var spec serviceSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	dir := relaynet.NewDirectory()
	for _, d := range spec.Relays {
		dir.List(d)
	}
	for s, addrs := range spec.Addrs {
		id, err := peer.Decode(s)
		if err != nil {
			return err
		}
		var ms []ma.Multiaddr
		for _, a := range addrs {
			m, err := ma.NewMultiaddr(a)
			if err != nil {
				return err
			}
			ms = append(ms, m)
		}
		dir.Set(id, ms)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return err
	}
	h, err := dht.NewHost(dht.HostConfig{Identity: k})
	if err != nil {
		return err
	}
	defer h.Close()
	lm := link.NewManager(h, link.Config{})
	lm.Start()
	defer lm.Close()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Config: hidden.Config{Links: lm, Directory: dir}, Key: key,
		PoW: spec.PoW, PoWMinEffort: spec.MinEffort, PoWAdjustEvery: spec.AdjustEvery})
	cancel()
	if err != nil {
		return err
	}
	defer l.Close()
	go serveFixed(l)
	enc := json.NewEncoder(out)
	if err := enc.Encode(map[string]string{"address": l.Address()}); err != nil {
		return err
	}
	for {
		cmd, err := r.ReadString('\n')
		if err != nil {
			return nil // the parent is done
		}
		if strings.TrimSpace(cmd) != "status" {
			return fmt.Errorf("unknown command %q", cmd)
		}
		rep := serviceReport{Status: l.Status()}
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
			rep.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
		rep.RSSKiB, rep.PeakRSSKiB = procStatusKiB("VmRSS:"), procStatusKiB("VmHWM:")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
}

// procStatusKiB reads one field of /proc/self/status in KiB; 0 where
// there is none.
func procStatusKiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// serviceProcess is a hidden service in a process of its own
// (runServiceProcess), started by the benchmark.
type serviceProcess struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	out     *bufio.Reader
	stderr  bytes.Buffer
	address string
}

// startServiceProcess starts the test binary as a hidden service on tn's
// relays and waits for its address.
func startServiceProcess(tb testing.TB, tn *testNet, pow bool, minEffort uint32, adjustEvery time.Duration) *serviceProcess {
	tb.Helper()
	spec := serviceSpec{Addrs: map[string][]string{}, PoW: pow, MinEffort: minEffort, AdjustEvery: adjustEvery}
	spec.Relays = tn.dir.Relays()
	for _, ai := range tn.dir.AddrInfos() {
		for _, a := range ai.Addrs {
			spec.Addrs[ai.ID.String()] = append(spec.Addrs[ai.ID.String()], a.String())
		}
	}
	b, err := json.Marshal(spec)
	if err != nil {
		tb.Fatal(err)
	}
	p := &serviceProcess{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	p.cmd.Env = append(os.Environ(), "OBOL_TEST_HS_PROCESS=1")
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p.out = bufio.NewReader(stdout)
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.stop)
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		tb.Fatal(err)
	}
	var first struct {
		Address string `json:"address"`
	}
	if err := p.read(&first); err != nil {
		tb.Fatalf("service process: %v\n%s", err, p.stderr.String())
	}
	p.address = first.Address
	return p
}

func (p *serviceProcess) read(v any) error {
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

// status asks the process for its service's status and its resources.
func (p *serviceProcess) status(tb testing.TB) serviceReport {
	tb.Helper()
	var rep serviceReport
	_, err := io.WriteString(p.stdin, "status\n")
	if err == nil {
		err = p.read(&rep)
	}
	if err != nil {
		tb.Fatalf("service process: %v\n%s", err, p.stderr.String())
	}
	return rep
}

// stop closes the process's stdin and waits for it to close its service
// and exit.
func (p *serviceProcess) stop() {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			fmt.Fprintf(os.Stderr, "service process exited: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}
