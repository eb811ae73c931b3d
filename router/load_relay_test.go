package router_test

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/internal/relaynet"
	"github.com/obolnet/obol/router"
)

// The load relay is the test binary run again as a lone exit relay, so
// that its CPU time and memory are the kernel's figures for it alone. It
// speaks a line protocol on stdin and stdout:
//
//	relay → first line  JSON loadRelayInfo
//	stats               → JSON loadRelayStats
//	gcstats             → JSON loadRelayStats, after a GC that returns
//	                      free memory to the OS (what is retained)
//
// It exits when stdin closes.
const loadRelayEnv = "OBOL_TEST_LOAD_RELAY"

func init() {
	if os.Getenv(loadRelayEnv) == "1" {
		if err := runLoadRelay(os.Stdin, os.Stdout); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

type loadRelayInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
	Onion []byte   `json:"onion"`
}

// loadRelayStats is what the load relay says of itself.
type loadRelayStats struct {
	CPU        time.Duration // user + system since start
	RSSKiB     int           // VmRSS
	PeakRSSKiB int           // VmHWM
	HeapInuse  uint64
	Goroutines int
	Router     router.Stats
}

// loadRelayConfig is the load relay's router configuration: an exit that
// may reach loopback. The per-peer limit on new circuits is raised to the
// relay-wide one (default 200 a second per peer, 2000 for the relay): the
// test's clients are few peers that each build circuits for many users at
// once. The relay-wide limit keeps its default.
func loadRelayConfig(onion circuit.OnionKey, pol *router.ExitPolicy) router.Config {
	return router.Config{
		OnionKeys:   []circuit.OnionKey{onion},
		Directory:   relaynet.NewDirectory(), // 1-hop circuits: no next hop
		Exit:        pol,
		CreateRate:  router.DefaultCreateRateTotal,
		CreateBurst: router.DefaultCreateBurstTotal,
	}
}

func runLoadRelay(in io.Reader, out io.Writer) error {
	h, err := relaynet.NewHost()
	if err != nil {
		return err
	}
	defer h.Close()
	onion, err := circuit.GenerateOnionKey(rand.Reader)
	if err != nil {
		return err
	}
	pol, err := router.ParseExitPolicy([]string{"accept *:*"}, router.AllowLoopback())
	if err != nil {
		return err
	}
	rt, err := router.New(h, loadRelayConfig(onion, pol))
	if err != nil {
		return err
	}
	stop, err := relaynet.RunRouter(h, rt)
	if err != nil {
		return err
	}
	defer stop()
	info := loadRelayInfo{ID: h.ID().String(), Onion: onion.Public[:]}
	for _, a := range h.Addrs() {
		info.Addrs = append(info.Addrs, a.String())
	}
	enc := json.NewEncoder(out)
	enc.Encode(info)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "gcstats":
			runtime.GC() // a second GC empties the sync.Pools' victim caches
			debug.FreeOSMemory()
			fallthrough
		case "stats":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			enc.Encode(loadRelayStats{CPU: cpuTime(), RSSKiB: procStatusKiB("VmRSS"), PeakRSSKiB: procStatusKiB("VmHWM"),
				HeapInuse: ms.HeapInuse, Goroutines: runtime.NumGoroutine(), Router: rt.Stats()})
		}
	}
	return nil
}

// procStatusKiB reads one of the kB fields of /proc/self/status.
func procStatusKiB(field string) int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// loadRelay is the parent's handle on a load relay process.
type loadRelay struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	dec   *json.Decoder
	hop   client.Hop

	mu sync.Mutex // serialises questions
}

// startLoadRelay starts a load relay process; the test's cleanup ends it.
func startLoadRelay(tb testing.TB) *loadRelay {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadRelayEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	r := &loadRelay{cmd: cmd, stdin: stdin, dec: json.NewDecoder(stdout)}
	tb.Cleanup(func() { stdin.Close(); cmd.Wait() })
	var info loadRelayInfo
	if err := r.dec.Decode(&info); err != nil {
		tb.Fatalf("load relay: %v", err)
	}
	id, err := peer.Decode(info.ID)
	if err != nil {
		tb.Fatal(err)
	}
	ai := peer.AddrInfo{ID: id}
	for _, a := range info.Addrs {
		ai.Addrs = append(ai.Addrs, ma.StringCast(a))
	}
	r.hop = client.Hop{Peer: ai, OnionKey: [32]byte(info.Onion)}
	return r
}

// stats asks the relay for its figures; gc first collects garbage.
func (r *loadRelay) stats(tb testing.TB, gc bool) loadRelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := "stats"
	if gc {
		q = "gcstats"
	}
	fmt.Fprintln(r.stdin, q)
	var st loadRelayStats
	if err := r.dec.Decode(&st); err != nil {
		tb.Fatalf("load relay stats: %v", err)
	}
	return st
}
