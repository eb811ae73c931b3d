package router_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
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

// TestMain lets the test binary run as a lone relay process, so that a
// benchmark can measure a relay's memory apart from the client's.
func TestMain(m *testing.M) {
	if os.Getenv("OBOL_TEST_RELAY_PROCESS") == "1" {
		runRelayProcess()
		return
	}
	os.Exit(m.Run())
}

type relayInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
	Onion []byte   `json:"onion"`
	Next  string   `json:"next"`
}

// runRelayProcess serves as a relay whose next hop is given on stdin
// ("next <id> <addr>"), answers "rss" with its resident set size and
// "stats" with a relayReport, and exits when stdin closes.
func runRelayProcess() {
	h, err := relaynet.NewHost()
	if err != nil {
		fmt.Println("error", err)
		return
	}
	onion, _ := circuit.GenerateOnionKey(rand.Reader)
	dir := relaynet.NewDirectory()
	// One client peer opens every circuit of the memory benchmark: no
	// per-peer rate or circuit cap.
	cfg := router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: dir, CreateRate: -1,
		MaxCircuitsPerPeer: 20000, MaxCircuitsPerChannel: 20000}
	if os.Getenv("OBOL_TEST_RELAY_FLOOD") == "1" { // an exit to loopback with default limits
		cfg.CreateRate, cfg.MaxCircuitsPerPeer, cfg.MaxCircuitsPerChannel = 0, 0, 0
		cfg.Exit, _ = router.ParseExitPolicy([]string{"accept *:*"}, router.AllowLoopback())
	}
	rt, err := router.New(h, cfg)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	go rt.Run(ctx)
	var addrs []string
	for _, a := range h.Addrs() {
		addrs = append(addrs, a.String())
	}
	info, _ := json.Marshal(relayInfo{ID: h.ID().String(), Addrs: addrs, Onion: onion.Public[:]})
	fmt.Println(string(info))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "next":
			id, _ := peer.Decode(f[1])
			dir.Set(id, []ma.Multiaddr{ma.StringCast(f[2])})
			fmt.Println("ok")
		case len(f) == 1 && f[0] == "rss":
			debug.FreeOSMemory() // measure what is retained, not garbage
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Println(rssKiB(), rt.Stats().Circuits, ms.HeapInuse)
		case len(f) == 1 && f[0] == "stats":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b, _ := json.Marshal(relayReport{PeakRSSKiB: peakRSSKiB(), RSSKiB: rssKiB(), HeapInuse: ms.HeapInuse, Stats: rt.Stats()})
			fmt.Println(string(b))
		}
	}
	cancel()
}

// relayReport is what a relay process says of itself.
type relayReport struct {
	PeakRSSKiB int // VmHWM
	RSSKiB     int
	HeapInuse  uint64
	Stats      router.Stats
}

func rssKiB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// BenchmarkIdleCircuitMemory opens 10,000 two-hop circuits whose first hop
// is a relay in its own process and reports that relay's memory per idle
// circuit (growth of RSS and of the live heap, after a GC, divided by
// circuits):
//
//	go test -run XXX -bench IdleCircuitMemory -benchtime 1x ./router
func BenchmarkIdleCircuitMemory(b *testing.B) {
	const circuits = 10000
	for b.Loop() {
		tn := newTestNet(b, 1, func(_ int, c *router.Config) { // the second hop, in this process
			c.CreateRate, c.MaxCircuitsPerPeer, c.MaxCircuitsPerChannel = -1, 20000, 20000
		})
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "OBOL_TEST_RELAY_PROCESS=1")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		out := bufio.NewScanner(stdout)
		ask := func(line string) string {
			if line != "" {
				fmt.Fprintln(stdin, line)
			}
			if !out.Scan() {
				b.Fatal("relay process ended")
			}
			return out.Text()
		}
		var info relayInfo
		if err := json.Unmarshal([]byte(ask("")), &info); err != nil {
			b.Fatal(err)
		}
		second := tn.Relays[0]
		ask(fmt.Sprintf("next %s %s", second.Host.ID(), second.Host.Addrs()[0]))
		id, _ := peer.Decode(info.ID)
		first := client.Hop{Peer: peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast(info.Addrs[0])}}, OnionKey: [32]byte(info.Onion)}
		path := []client.Hop{first, second.Hop()}
		build := func() *client.Circuit {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := client.Build(ctx, tn.client, path)
			if err != nil {
				b.Fatal(err)
			}
			return c
		}
		build().Close() // channels open, allocators warm
		var rss0, n0, heap0 int
		fmt.Sscan(ask("rss"), &rss0, &n0, &heap0)
		var mu sync.Mutex
		var open []*client.Circuit
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < circuits; i += 4 {
					c := build()
					mu.Lock()
					open = append(open, c)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		var rss1, n1, heap1 int
		fmt.Sscan(ask("rss"), &rss1, &n1, &heap1)
		if n1 < circuits {
			b.Fatalf("relay holds %d circuits, want %d", n1, circuits)
		}
		b.ReportMetric(float64(rss1-rss0)*1024/circuits, "relay-B/circuit")
		b.ReportMetric(float64(heap1-heap0)/circuits, "relay-heap-B/circuit")
		b.ReportMetric(float64(rss1)/1024, "relay-RSS-MiB")
		for _, c := range open {
			c.Close()
		}
		stdin.Close()
		cmd.Wait()
	}
}
