package link

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
)

// echoer sends every cell of its circuit back; sink drops them.
type echoer struct{}

func (echoer) HandleCell(c *Circ, cell []byte) { c.SendCell(context.Background(), cell) }
func (echoer) CircuitClosed(*Circ, error)      {}

type sink struct{}

func (sink) HandleCell(_ *Circ, cell []byte) { Release(cell) }
func (sink) CircuitClosed(*Circ, error)      {}

// pinger receives the echoes.
type pinger struct{ got chan struct{} }

func (p pinger) HandleCell(_ *Circ, cell []byte) { Release(cell); p.got <- struct{}{} }
func (pinger) CircuitClosed(*Circ, error)        {}

// BenchmarkCellLatencyUnderBulk measures the round trip of one cell on a
// circuit whose channel also carries a circuit sending as fast as it
// can (bulk), or a sixteenth of its cells each millisecond (paced), against
// the same channel quiet: the cost of the bulk circuit's queue to an
// interactive one, with no cryptography in the way. bulk-MB/s is what
// the busy circuit moved meanwhile. A paced circuit leaves the transport
// idle between its bursts, a saturating one fills its buffers, where the
// scheduler cannot reorder cells.
//
//	go test -run XXX -bench CellLatencyUnderBulk -benchtime 300x ./circuit/link
func BenchmarkCellLatencyUnderBulk(b *testing.B) {
	for _, load := range []string{"quiet", "bulk", "paced"} {
		b.Run(load, func(b *testing.B) {
			ha, hb := newHost(b), newHost(b)
			first := true
			var mu sync.Mutex
			mb := NewManager(hb, Config{OnCreate: func(*Channel, uint32) Handler {
				mu.Lock()
				defer mu.Unlock()
				if first {
					first = false
					return echoer{}
				}
				return sink{}
			}})
			ma := NewManager(ha, Config{})
			mb.Start()
			ma.Start()
			b.Cleanup(func() { ma.Close(); mb.Close() })
			ch := dialB(b, ma, mb)
			p := pinger{got: make(chan struct{}, 1)}
			ping, err := ch.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			ping.Send(ctx, circuit.CmdCreate, nil)
			<-p.got
			var sent atomic.Int64
			start := time.Now()
			if load != "quiet" {
				bulk, err := ch.Open(sink{})
				if err != nil {
					b.Fatal(err)
				}
				bulk.Send(ctx, circuit.CmdCreate, nil)
				bctx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() {
					defer close(done)
					for i := 0; bctx.Err() == nil; i++ {
						bulk.Send(bctx, circuit.CmdRelay, nil)
						sent.Add(1)
						if load == "paced" && i%16 == 15 {
							time.Sleep(time.Millisecond)
						}
					}
				}()
				b.Cleanup(func() { stop(); <-done })
			}
			for b.Loop() {
				ping.Send(ctx, circuit.CmdRelay, nil)
				<-p.got
			}
			b.ReportMetric(float64(sent.Load()*circuit.CellSize)/time.Since(start).Seconds()/1e6, "bulk-MB/s")
		})
	}
}
