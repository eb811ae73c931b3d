package netnstest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// buildObol builds the obol command, CGO-free, into a temporary directory.
func buildObol(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "obol")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/obolnet/obol/cmd/obol")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// relayProc is one `obol relay` running in a namespace.
type relayProc struct {
	group  int    // index of its namespace
	ns     string // its namespace
	addr   string // QUIC multiaddr with /p2p/, to bootstrap from
	status string // host:port of its status endpoint, in ns
	id     peer.ID
	cmd    *exec.Cmd
	log    string // file with its stdout and stderr
}

// relayTiming is the relays' descriptor lifetime and republish interval:
// the shortest `obol relay` accepts for the lifetime, and a republish
// interval short enough that a test sees several rounds.
var relayTiming = []string{"--lifetime", "1m", "--republish", "3s"}

// startRelay runs `obol relay` in namespace ns, listening on ip:port (QUIC
// and TCP), and waits for it to print its peer ID. It stops the relay
// when the test ends. The relays of these tests publish unchecked: they
// are on private addresses, which AutoNAT v2 does not check by default.
func startRelay(t *testing.T, bin string, group int, ns, ip string, port int, bootstrap []string) *relayProc {
	t.Helper()
	listen := fmt.Sprintf("/ip4/%s/udp/%d/quic-v1,/ip4/%s/tcp/%d", ip, port, ip, port)
	return startRelayArgs(t, bin, group, ns, ip, port, bootstrap, "--listen", listen, "--skip-reach-check")
}

// startRelayArgs runs `obol relay` in namespace ns with the extra args,
// which must include --listen; its bootstrap address is QUIC on ip:port.
func startRelayArgs(t *testing.T, bin string, group int, ns, ip string, port int, bootstrap []string, extra ...string) *relayProc {
	t.Helper()
	dir := t.TempDir()
	r := &relayProc{group: group, ns: ns, log: filepath.Join(dir, "log"),
		status: fmt.Sprintf("127.0.0.1:%d", port+100)}
	args := []string{"netns", "exec", ns, bin, "relay",
		"--data-dir", filepath.Join(dir, "data"),
		"--status", r.status, "--log-level", "debug"}
	args = append(args, relayTiming...)
	args = append(args, extra...)
	if len(bootstrap) > 0 {
		args = append(args, "--bootstrap", strings.Join(bootstrap, ","))
	}
	f, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r.cmd = exec.Command("ip", args...)
	r.cmd.Stdout, r.cmd.Stderr = f, f
	// `ip netns exec` execs obol in place: the relay is this child, and
	// dies with the test process.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop(t) })
	r.id = r.waitPeerID(t)
	r.addr = fmt.Sprintf("/ip4/%s/udp/%d/quic-v1/p2p/%s", ip, port, r.id)
	return r
}

// waitPeerID reads the "peer ID: " line the relay prints once it listens.
func (r *relayProc) waitPeerID(t *testing.T) peer.ID {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(r.log)
		for line := range strings.Lines(string(b)) {
			if s, ok := strings.CutPrefix(line, "peer ID: "); ok {
				id, err := peer.Decode(strings.TrimSpace(s))
				if err != nil {
					t.Fatalf("relay printed a bad peer ID %q: %v", s, err)
				}
				return id
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("relay in %s printed no peer ID within 30s:\n%s", r.ns, r.tail())
	return ""
}

// stop interrupts the relay and kills it if it has not ended in 10s.
func (r *relayProc) stop(t *testing.T) {
	_ = r.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
		t.Logf("relay %s in %s did not stop on SIGINT; killed", r.id.ShortString(), r.ns)
	}
	if t.Failed() {
		t.Logf("relay %s in %s, last log lines:\n%s", r.id.ShortString(), r.ns, r.tail())
	}
	r.keepLog(t)
}

// logDirEnv names a directory to copy every relay's whole log into when
// the relay stops (GOLOG_LOG_LEVEL, passed on to the relays, adds
// libp2p's own logs).
const logDirEnv = "OBOL_NETNS_LOGS"

// keepLog copies the relay's log into $OBOL_NETNS_LOGS, if set, as
// <test>-<group>-<peer ID's tail>.log.
func (r *relayProc) keepLog(t *testing.T) {
	dir := os.Getenv(logDirEnv)
	if dir == "" {
		return
	}
	b, _ := os.ReadFile(r.log)
	id := r.id.String()
	name := fmt.Sprintf("%s-%d-%s.log", strings.ReplaceAll(t.Name(), "/", "_"), r.group, id[len(id)-6:])
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Logf("relay log not kept: %v", err)
	}
}

// tail is the end of the relay's log.
func (r *relayProc) tail() string {
	b, _ := os.ReadFile(r.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}

// routingTable asks the relay's status endpoint for its routing table's
// size; -1 if it did not answer.
func (r *relayProc) routingTable(ctx context.Context, bin string) int {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", r.ns, bin, "status",
		"--addr", r.status, "--json", "--timeout", "5s").Output()
	if err != nil {
		return -1
	}
	var s struct {
		DHT struct {
			RoutingTable int `json:"routing_table"`
		} `json:"dht"`
	}
	if json.Unmarshal(out, &s) != nil {
		return -1
	}
	return s.DHT.RoutingTable
}

// sampleFrom runs `obol relays` in namespace ns, joining through
// bootstrap, and returns the sequence number of every descriptor it found,
// read back from the cache file the command leaves behind. A sample that
// ends short or fails still returns what it found, with the command's
// error.
func sampleFrom(ctx context.Context, bin, ns string, bootstrap []string, n int) (map[peer.ID]uint64, error) {
	dir, err := os.MkdirTemp("", "obol-relays-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	relays, runErr := sampleCache(ctx, bin, ns, bootstrap, n, filepath.Join(dir, "relays.cache"))
	if relays == nil && runErr != nil {
		return nil, runErr
	}
	seqs := map[peer.ID]uint64{}
	for _, r := range relays {
		seqs[r.PeerID] = r.Seq
	}
	return seqs, runErr
}
