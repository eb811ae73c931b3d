package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/internal/relaynet"
	"github.com/obolnet/obol/router"
)

// A relay child is a process of its own that runs one relay (a router on
// a libp2p host) and one plain-chain forwarder, so that their CPU time
// and memory are measured apart from the client and the other nodes.
// It speaks a line protocol on stdin and stdout:
//
//	child → first line   JSON childInfo
//	next ID ADDR         the relay's next hop is ID at ADDR        → "ok"
//	chainnext ID ADDR    the forwarder's next host is ID at ADDR   → "ok"
//	stats                → "RSS_KiB CIRCUITS HEAP_INUSE CPU_NS PEAK_RSS_KiB"
//	                       (after a GC; the peak since the last resetpeak)
//	resetpeak            the peak resident set starts again from now → "ok"
//	floodrelay           starts a second relay, with the router's default
//	                     limits, for the flood scenario → JSON floodInfo
//	floodstats           → "CIRCUITS REFUSED_CREATES REFUSED_CIRCUITS" of
//	                       that relay
//
// It exits when stdin closes.

type childInfo struct {
	Relay      peer.ID  `json:"relay"`
	RelayAddrs []string `json:"relay_addrs"`
	Onion      []byte   `json:"onion"`
	Chain      peer.ID  `json:"chain"`
	ChainAddrs []string `json:"chain_addrs"`
}

// RelayChild runs the relay child on the given stdin and stdout; the
// command calls it in the process that Config.Child starts.
func RelayChild(in io.Reader, out io.Writer) error {
	dir := relaynet.NewDirectory()
	h, err := newHost()
	if err != nil {
		return err
	}
	defer h.Close()
	onion, err := circuit.GenerateOnionKey(rand.Reader)
	if err != nil {
		return err
	}
	// No per-peer limit on new circuits nor per-peer cap on open ones: the
	// memory scenario opens thousands from one client as fast as it can.
	rt, err := router.New(h, router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: dir, CreateRate: -1,
		MaxCircuitsPerPeer: 20000, MaxCircuitsPerChannel: 20000})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rt.Run(ctx)
	ch, err := newHost()
	if err != nil {
		return err
	}
	defer ch.Close()
	var mu sync.Mutex
	var next peer.ID
	ch.SetStreamHandler(chainProto, func(s network.Stream) {
		mu.Lock()
		n := next
		mu.Unlock()
		forward(ch, s, n, "")
	})
	info := childInfo{Relay: h.ID(), RelayAddrs: addrStrings(h.Addrs()), Onion: onion.Public[:],
		Chain: ch.ID(), ChainAddrs: addrStrings(ch.Addrs())}
	b, _ := json.Marshal(info)
	fmt.Fprintln(out, string(b))
	var flood *floodRelay
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && (f[0] == "next" || f[0] == "chainnext"):
			id, err := peer.Decode(f[1])
			a, err2 := ma.NewMultiaddr(f[2])
			if err != nil || err2 != nil {
				fmt.Fprintln(out, "error bad peer or address")
				continue
			}
			if f[0] == "next" {
				dir.Set(id, []ma.Multiaddr{a})
			} else {
				ch.Peerstore().AddAddr(id, a, time.Hour)
				mu.Lock()
				next = id
				mu.Unlock()
			}
			fmt.Fprintln(out, "ok")
		case len(f) == 1 && f[0] == "stats":
			debug.FreeOSMemory() // what is retained, not garbage
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Fprintln(out, statusKiB("VmRSS:"), rt.Stats().Circuits, ms.HeapInuse, int64(cpuTime()), statusKiB("VmHWM:"))
		case len(f) == 1 && f[0] == "floodrelay":
			if flood != nil {
				fmt.Fprintln(out, "error flood relay already running")
				continue
			}
			info, fr, err := startFloodRelay(ctx, dir)
			if err != nil {
				fmt.Fprintln(out, "error", err)
				continue
			}
			flood = fr
			defer fr.host.Close()
			b, _ := json.Marshal(info)
			fmt.Fprintln(out, string(b))
		case len(f) == 1 && f[0] == "floodstats":
			if flood == nil {
				fmt.Fprintln(out, "error no flood relay")
				continue
			}
			st := flood.rt.Stats()
			fmt.Fprintln(out, st.Circuits, st.RefusedCreates, st.RefusedCircuits)
		case len(f) == 1 && f[0] == "resetpeak":
			if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
				fmt.Fprintln(out, "error", err)
				continue
			}
			fmt.Fprintln(out, "ok")
		default:
			fmt.Fprintln(out, "error unknown command")
		}
	}
	return sc.Err()
}

// floodRelay is the relay child's second relay: the router's default
// limits, for the flood scenario.
type floodRelay struct {
	host host.Host
	rt   *router.Router
}

// floodInfo is the answer to "floodrelay".
type floodInfo struct {
	Relay peer.ID  `json:"relay"`
	Addrs []string `json:"addrs"`
	Onion []byte   `json:"onion"`
}

func startFloodRelay(ctx context.Context, dir *relaynet.Directory) (floodInfo, *floodRelay, error) {
	h, err := newHost()
	if err != nil {
		return floodInfo{}, nil, err
	}
	onion, err := circuit.GenerateOnionKey(rand.Reader)
	if err != nil {
		h.Close()
		return floodInfo{}, nil, err
	}
	rt, err := router.New(h, router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: dir})
	if err != nil {
		h.Close()
		return floodInfo{}, nil, err
	}
	go rt.Run(ctx)
	return floodInfo{Relay: h.ID(), Addrs: addrStrings(h.Addrs()), Onion: onion.Public[:]}, &floodRelay{host: h, rt: rt}, nil
}

func addrStrings(as []ma.Multiaddr) []string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return s
}

// cpuTime is this process's CPU time, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// statusKiB is a field of /proc/self/status in KiB (VmRSS: the resident
// set; VmHWM: its peak).
func statusKiB(field string) int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// child is the parent's handle on a relay child.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	info  childInfo
	mu    sync.Mutex
}

// childStats is one answer to "stats".
type childStats struct {
	rssKiB, circuits, heap, peakKiB int
	cpu                             time.Duration
}

func startChild(cmd *exec.Cmd) (*child, error) {
	c := &child{cmd: cmd}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start relay child: %w", err)
	}
	c.out = bufio.NewScanner(stdout)
	line, err := c.ask("")
	if err == nil {
		err = json.Unmarshal([]byte(line), &c.info)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("bench: relay child: %w", err)
	}
	return c, nil
}

// ask sends a line (none if empty) and returns the child's answer.
func (c *child) ask(line string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if line != "" {
		if _, err := fmt.Fprintln(c.stdin, line); err != nil {
			return "", err
		}
	}
	if !c.out.Scan() {
		return "", errors.New("relay child ended")
	}
	ans := c.out.Text()
	if strings.HasPrefix(ans, "error") {
		return "", errors.New(ans)
	}
	return ans, nil
}

func (c *child) stats() (childStats, error) {
	ans, err := c.ask("stats")
	if err != nil {
		return childStats{}, err
	}
	var s childStats
	var cpu int64
	if _, err := fmt.Sscan(ans, &s.rssKiB, &s.circuits, &s.heap, &cpu, &s.peakKiB); err != nil {
		return s, fmt.Errorf("bench: relay child stats %q: %w", ans, err)
	}
	s.cpu = time.Duration(cpu)
	return s, nil
}

// resetPeak starts the child's peak resident set again from now.
func (c *child) resetPeak() error {
	_, err := c.ask("resetpeak")
	return err
}

// setNext tells the child's relay ("next") or forwarder ("chainnext")
// where its next hop is.
func (c *child) setNext(what string, ai peer.AddrInfo) error {
	_, err := c.ask(fmt.Sprintf("%s %s %s", what, ai.ID, ai.Addrs[0]))
	return err
}

func (c *child) relayHop() (client.Hop, error) {
	addrs, err := multiaddrs(c.info.RelayAddrs)
	if err != nil || len(c.info.Onion) != 32 {
		return client.Hop{}, fmt.Errorf("bench: relay child info: bad addresses or onion key")
	}
	return client.Hop{Peer: peer.AddrInfo{ID: c.info.Relay, Addrs: addrs}, OnionKey: [32]byte(c.info.Onion)}, nil
}

func multiaddrs(ss []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

// Close ends the child and waits for it; idempotent.
func (c *child) Close() {
	if c.stdin == nil {
		return
	}
	c.stdin.Close()
	c.stdin = nil
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}
