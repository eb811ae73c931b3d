package pay

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/obolnet/obol/payment/mint"
)

// The pool fills itself, in the background, to the bundles it is asked
// for, through operations of class pool; Run's filler ends with its ctx.
func TestPoolFillsItself(t *testing.T) {
	url := mint.StartTest(t, testMint, mint.ServerConfig{}).URL
	opsCh := make(chan MintOp, 64)
	tr := MintTransportFunc(func(op MintOp, r *http.Request) (*http.Response, error) {
		res, err := http.DefaultTransport.RoundTrip(r)
		opsCh <- op // once answered
		return res, err
	})
	w, err := OpenWallet(WalletConfig{Dir: t.TempDir(), Mint: url, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	if err := w.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.TopUp(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	c, err := OpenChannels(ChannelsConfig{Wallet: w, Seed: make([]byte, 16)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for len(opsCh) > 0 {
		<-opsCh
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.runPool(rctx, PoolConfig{Bundles: 3, Capacities: []uint64{16, 64}, Every: time.Millisecond}, func(err error) { t.Error(err) })
	}()
	split := <-opsCh // the first fill's swap
	if split.Class != MintPool {
		t.Fatalf("the pool filled through class %s", split.Class)
	}
	cancel()
	<-done
	n, err := c.FillPool(ctx, 3, []uint64{16, 64}) // ready: no request
	if err != nil || n != 6 || len(opsCh) != 0 {
		t.Fatalf("after the fill: %d fundings ready (%v), %d more requests", n, err, len(opsCh))
	}
}
