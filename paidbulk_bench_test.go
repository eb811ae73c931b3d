package obol_test

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/internal/localnet"
	"github.com/obolnet/obol/pay"
)

// BenchmarkFreshIsolationBulk fetches 4 MiB on a stream of an isolation
// of its own (a circuit not used before, fresh or prebuilt) through a
// client of six relays, paid — the relays and the client reach the mint
// through circuits, as they do by default — and unpaid, in the same run.
//
//	go test -run NONE -bench FreshIsolationBulk -benchtime 10x .
func BenchmarkFreshIsolationBulk(b *testing.B) {
	for _, paid := range []bool{false, true} {
		name := map[bool]string{false: "unpaid", true: "paid"}[paid]
		b.Run(name, func(b *testing.B) { benchFreshIsolation(b, paid) })
	}
}

func benchFreshIsolation(b *testing.B, paid bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := localnet.Config{Relays: 6}
	ccfg := obol.ClientConfig{AllowSameSubnet: true, MinGuardAge: -1, MinExitAge: -1, Sample: 6}
	if paid {
		mw := startMintWatch(b)
		cfg.Payment = &pay.RelayPayment{Mint: mw.url, PerMiB: 1000, PerCircuit: 1000}
		ccfg.Pay = &obol.PayConfig{WalletDir: fundedWallet(b, ctx, mw.url, 1_000_000)}
	}
	network, err := localnet.Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer network.Close()
	ccfg.Bootstrap = network.Bootstrap()
	c, err := obol.NewClient(ccfg)
	if err != nil {
		b.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	defer func() { stop(); <-done }()
	if err := c.Joined(ctx); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	const n = 4 << 20
	go serveBytes(ln, n)
	b.SetBytes(n)
	b.ResetTimer()
	for range b.N {
		var key client.IsolationKey
		rand.Read(key[:])
		conn, err := c.Dial(client.WithIsolation(ctx, key), "tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.Copy(io.Discard, conn)
		conn.Close()
		if err != nil || got != n {
			b.Fatalf("read %d of %d bytes (%v)", got, n, err)
		}
	}
}
