package router_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/internal/relaynet"
)

// floodedRelay is the relay a flood benchmark floods, in a process of its
// own (the test binary run as a relay, see TestMain), so that its peak
// RSS is its own and not the flooders' or the client's. It is an exit
// that may reach loopback, with default limits.
type floodedRelay struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	hop   client.Hop
}

func startFloodedRelay(b *testing.B, next *relaynet.Relay) *floodedRelay {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "OBOL_TEST_RELAY_PROCESS=1", "OBOL_TEST_RELAY_FLOOD=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	r := &floodedRelay{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	var info relayInfo
	if err := json.Unmarshal([]byte(r.ask(b, "")), &info); err != nil {
		b.Fatal(err)
	}
	r.ask(b, fmt.Sprintf("next %s %s", next.Host.ID(), next.Host.Addrs()[0]))
	id, _ := peer.Decode(info.ID)
	r.hop = client.Hop{Peer: peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast(info.Addrs[0])}}, OnionKey: [32]byte(info.Onion)}
	return r
}

func (r *floodedRelay) ask(b *testing.B, line string) string {
	if line != "" {
		fmt.Fprintln(r.stdin, line)
	}
	if !r.out.Scan() {
		b.Fatal("relay process ended")
	}
	return r.out.Text()
}

func (r *floodedRelay) report(b *testing.B) relayReport {
	var rep relayReport
	if err := json.Unmarshal([]byte(r.ask(b, "stats")), &rep); err != nil {
		b.Fatal(err)
	}
	return rep
}

// namedFlood is one flood a benchmark runs against a relay of its own.
type namedFlood struct {
	name string
	run  func(ctx context.Context, b *testing.B, e *floodEnv)
}

// floodEnv is what a flood is aimed at: the flooded relay, an exit after
// it (in this process), the data server and a silent server.
type floodEnv struct {
	tn     *testNet
	victim client.Hop
	port   uint16 // data server
	silent uint16 // accepts, never speaks
}

// path is the honest path, and the flooders' two-hop path.
func (e *floodEnv) path() []client.Hop { return []client.Hop{e.victim, e.tn.Relays[0].Hop()} }

// benchFlood measures an honest two-hop transfer (the flooded relay
// first) without and with flood running, each against a fresh relay
// process, and reports the relay's peak RSS (VmHWM) and what it refused:
//
//	go test -run XXX -bench 'Flood$' -benchtime 3x ./router
func benchFlood(b *testing.B, floods ...namedFlood) {
	port, _ := dataServer(b)
	silent := silentServer(b)
	for _, f := range append([]namedFlood{{name: "quiet"}}, floods...) {
		on := f.run != nil
		b.Run(f.name, func(b *testing.B) {
			tn := newTestNet(b, 1, nil)
			victim := startFloodedRelay(b, tn.Relays[0])
			e := &floodEnv{tn: tn, victim: victim.hop, port: port, silent: silent}
			honest := buildOn(b, tn.client, e.path())
			ctx, cancel := context.WithCancel(context.Background())
			b.Cleanup(cancel) // before the flood's own cleanups run
			if on {
				f.run(ctx, b, e)
			}
			b.SetBytes(benchSize)
			for b.Loop() {
				sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
				s, err := honest.Dial(sctx, "127.0.0.1", port)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := get(s, benchSize); err != nil {
					b.Fatal(err)
				}
				s.Close()
				scancel()
			}
			rep := victim.report(b)
			b.ReportMetric(float64(rep.PeakRSSKiB)/1024, "relay-peak-RSS-MiB")
			b.ReportMetric(float64(rep.HeapInuse)/(1<<20), "relay-heap-MiB")
			st := rep.Stats
			for _, m := range []struct {
				v    uint64
				unit string
			}{
				{st.RefusedCreates, "refused-creates"}, {st.FailedCreates, "failed-creates"},
				{st.RefusedStreams, "refused-streams"}, {uint64(st.Streams), "streams"},
				{st.Link.DroppedCells, "dropped-cells"}, {st.Link.Overflows, "overflows"},
				{st.Link.Shed, "shed"}, {st.Link.RefusedChannels, "refused-channels"},
				{st.Link.StalledChannels, "stalled-channels"},
			} {
				if on {
					b.ReportMetric(float64(m.v), m.unit)
				}
			}
		})
	}
}

// BenchmarkHandshakeFlood: 8 peers send CREATEs with random handshakes,
// 2500 a second each (12 times a peer's rate, 10 times the relay's), or as
// fast as their channels take them (then the flooders, in the client's
// process, take most of the machine's CPU); one peer writes 20,000 cells
// of random bytes on a link stream and opens 24 channels.
func BenchmarkHandshakeFlood(b *testing.B) {
	flood := func(perPeer float64) func(ctx context.Context, b *testing.B, e *floodEnv) {
		return func(ctx context.Context, b *testing.B, e *floodEnv) {
			garbageCreates(ctx, b, e.victim.Peer, 8, -1, perPeer)
			linkGarbage(ctx, b, e.victim.Peer, 20000, 3*link.DefaultMaxChannelsPerPeer)
		}
	}
	benchFlood(b, namedFlood{"flooded", flood(2500)}, namedFlood{"unpaced", flood(0)})
}

// BenchmarkHalfOpenStreamFlood: 4 circuits ending at the flooded relay
// each hold 512 streams to a server that never speaks (2048 sockets), and
// a fifth holds 20 bulk streams it never reads.
func BenchmarkHalfOpenStreamFlood(b *testing.B) {
	benchFlood(b, namedFlood{"flooded", func(ctx context.Context, b *testing.B, e *floodEnv) {
		bad := attacker(b)
		for range 4 {
			c := buildOn(b, bad, []client.Hop{e.victim})
			halfOpen(ctx, c, e.silent, 1000, 16)
		}
		c := buildOn(b, bad, []client.Hop{e.victim})
		for range 20 {
			s, err := c.Dial(ctx, "127.0.0.1", e.port)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(s, "GET /bytes/1000000000 HTTP/1.0\r\n\r\n")
		}
	}})
}

// BenchmarkSlowReaderFlood: 4 channels of 100 circuits each ask for a
// gigabyte through the flooded relay and never read (400 congestion
// windows, 128 MB, more than the relay's 80 MiB queue budget).
func BenchmarkSlowReaderFlood(b *testing.B) {
	benchFlood(b, namedFlood{"flooded", func(ctx context.Context, b *testing.B, e *floodEnv) {
		for range 4 {
			slowReaders(ctx, b, e.path(), e.port, 100)
		}
	}})
}

// BenchmarkCellFlood: 16 circuits of one channel send DROP cells through
// the flooded relay to the exit, 1000 a second each (20 MB/s in all), or
// as fast as the channel takes them.
func BenchmarkCellFlood(b *testing.B) {
	flood := func(perCircuit float64) func(ctx context.Context, b *testing.B, e *floodEnv) {
		return func(ctx context.Context, b *testing.B, e *floodEnv) {
			floodCells(ctx, b, attacker(b), e.path(), 16, perCircuit)
		}
	}
	benchFlood(b, namedFlood{"flooded", flood(1000)}, namedFlood{"unpaced", flood(0)})
}
