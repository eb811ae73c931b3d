package pay_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/pay"
)

const benchSize = 32 << 20

// BenchmarkBulk compares 3-hop throughput of a paid circuit (default
// terms) with an unpaid one in the same run: each iteration moves 32 MiB
// over one, then the other, so that both see the same machine load. It
// reports both rates, their ratio, the relays' pauses for payment and the
// payment cells (sent and answered) as a share of the data:
//
//	go test -run XXX -bench Bulk -benchtime 10x ./pay
func BenchmarkBulk(b *testing.B) {
	port, _ := dataServer(b)
	free := newTestNet(b, 3, netOpts{unpaid: true})
	tn := newTestNet(b, 3, netOpts{terms: pay.DefaultTerms, settleDelay: time.Minute})
	cl := tn.newClient(b, b.TempDir(), 20000)
	circs := []*paidCircuit{free.build(b, nil, 0, 0, 1, 2), tn.build(b, cl, 12_000_000, 0, 1, 2)}
	var took [2]time.Duration
	fetch := func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		s, err := circs[i].Dial(ctx, "127.0.0.1", port)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := get(s, benchSize, nil); err != nil {
			b.Fatal(err)
		}
		s.Close()
		took[i] += time.Since(start)
	}
	b.SetBytes(2 * benchSize)
	for i := 0; b.Loop(); i++ { // alternate which goes first
		fetch(i % 2)
		fetch(1 - i%2)
	}
	data := float64(b.N) * benchSize
	rate := func(d time.Duration) float64 { return data / d.Seconds() / 1e6 }
	b.ReportMetric(rate(took[0]), "unpaid-MB/s")
	b.ReportMetric(rate(took[1]), "paid-MB/s")
	b.ReportMetric(100*took[0].Seconds()/took[1].Seconds(), "paid/unpaid-%")
	sent, got := circs[1].pay.Cells()
	b.ReportMetric(100*float64((sent+got)*circuit.CellSize)/data, "payment-%")
	var pauses uint64
	for _, r := range tn.relays {
		pauses += r.meter.Pauses()
	}
	b.ReportMetric(float64(pauses)/float64(b.N), "pauses/op")
}

// BenchmarkFirstByte measures the time from the start of a build to the
// first byte of an answer on a fresh 3-hop circuit, in turn unpaid, paid
// with its channels funded at once (a swap at the mint and the
// CHANNEL_OPENs while the first stream runs on the free allowance:
// "paid-now") and paid as clients pay by default, funded at drawn times
// 1–8 s after the build from the pool ("paid"). Teardown (and, paid,
// waiting for the payments to end) is not counted:
//
//	go test -run XXX -bench FirstByte -benchtime 30x ./pay
func BenchmarkFirstByte(b *testing.B) {
	for _, delay := range []time.Duration{0, 10 * time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%v", delay), func(b *testing.B) { benchFirstByte(b, delay) })
	}
}

func benchFirstByte(b *testing.B, delay time.Duration) {
	port, _ := dataServer(b)
	req := []byte("GET /bytes/1024 HTTP/1.0\r\nHost: x\r\n\r\n")
	free := newTestNet(b, 3, netOpts{unpaid: true})
	tn := newTestNet(b, 3, netOpts{terms: pay.DefaultTerms, settleDelay: time.Minute})
	cl := tn.newClient(b, b.TempDir(), 200000)
	def := tn.newClient(b, b.TempDir(), 200000)
	def.paid.Close()
	var err error
	if def.paid, err = pay.OpenChannels(pay.ChannelsConfig{Wallet: def.wallet, Seed: []byte("deferred funding channel seed"), Dir: def.dir}); err != nil {
		b.Fatal(err)
	}
	if _, err := def.paid.FillPool(context.Background(), 4, []uint64{256}); err != nil {
		b.Fatal(err)
	}
	for _, n := range []*testNet{free, tn} {
		if delay > 0 {
			n.delayLinks(b, delay)
		}
		n.build(b, nil, 0, 0, 1, 2).Close() // links to the relays are up
	}
	var took [3]time.Duration
	firstByte := func(i int) {
		start := time.Now()
		var pc *paidCircuit
		switch i {
		case 0:
			pc = free.build(b, nil, 0, 0, 1, 2)
		case 1:
			pc = tn.build(b, cl, 300_000, 0, 1, 2)
		default:
			pc = tn.build(b, def, 300_000, 0, 1, 2)
		}
		s, err := pc.Dial(context.Background(), "127.0.0.1", port)
		if err != nil {
			b.Fatal(err)
		}
		s.Write(req)
		var one [1]byte
		if _, err := io.ReadFull(s, one[:]); err != nil {
			b.Fatal(err)
		}
		took[i] += time.Since(start)
		pc.Close()
		if pc.pay != nil {
			pc.cancel() // as client.PayFor does when its circuit closes: a funding still waiting is dropped
			<-pc.done
		}
	}
	for i := 0; b.Loop(); i++ { // rotate which goes first
		for k := range 3 {
			firstByte((i + k) % 3)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(took[0]), "unpaid-ms")
	b.ReportMetric(ms(took[1]), "paid-now-ms")
	b.ReportMetric(ms(took[2]), "paid-ms")
	b.ReportMetric(100*took[2].Seconds()/took[0].Seconds(), "paid/unpaid-%")
	var pauses uint64
	for _, r := range tn.relays {
		pauses += r.meter.Pauses()
	}
	b.ReportMetric(float64(pauses)/float64(b.N), "pauses/op")
	if delay > 0 {
		b.ReportMetric(float64(6*delay)/float64(time.Millisecond), "path-RTT-ms")
	}
}
