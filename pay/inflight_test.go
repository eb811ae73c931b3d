package pay

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/mint"
	"github.com/obolnet/obol/payment/wallet"
)

// unfundedChannel is a wallet holding 10,000 sat of a test mint, reached
// with hc (nil: directly), its channel book, and a channel booked in it,
// not funded.
func unfundedChannel(t *testing.T, hc *http.Client) (*wallet.Wallet, *Channels, *payment.Channel, uint64) {
	url := mint.StartTest(t, testMint, mint.ServerConfig{}).URL
	ctx := context.Background()
	w, err := OpenWallet(WalletConfig{DirectMintConnectionUnsafe: true, Dir: t.TempDir(), Mint: url, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.TopUp(ctx, 10_000); err != nil {
		t.Fatal(err)
	}
	c, err := OpenChannels(ChannelsConfig{Wallet: w, Seed: []byte("booked channel seed"), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	relay, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	ch, _, counter, err := c.newChannel(RelayTerms{ReceiverKey: relay.PubKey()}, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	return w, c, ch, counter
}

// A settlement that runs while a channel is booked but its funding is
// still under way leaves the channel alone: taking it for a channel never
// funded would drop it from the book just before the funding lands, and
// the funding would then never come back, neither as change nor as a
// refund.
func TestSettleLeavesFundingUnderWay(t *testing.T) {
	ctx := context.Background()
	_, c, ch, counter := unfundedChannel(t, nil)
	// The settlement comes between the booking and the funding.
	if rep, err := c.Settle(ctx); err != nil || rep.Settled != 0 {
		t.Fatalf("settlement during the funding: %+v, %v", rep, err)
	}
	if err := c.fund(ctx, ch, counter); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Open != 1 || rep.Locked == 0 {
		t.Fatalf("after its funding the channel is %+v: no longer booked, its funding lost", rep)
	}
}

// swapGate holds the mint's swaps while armed, and says when one is held.
type swapGate struct {
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (g *swapGate) RoundTrip(r *http.Request) (*http.Response, error) {
	if g.armed.Load() && r.URL.Path == "/v1/swap" {
		g.held <- struct{}{}
		<-g.release
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A settlement while another wallet operation is with the mint settles
// the channels it can: the operation under way is its own answer's to
// settle, not a pending one that would make a funded channel look never
// funded.
func TestSettleWhileAnOperationIsUnderWay(t *testing.T) {
	ctx := context.Background()
	g := &swapGate{held: make(chan struct{}, 1), release: make(chan struct{})}
	w, c, ch, counter := unfundedChannel(t, &http.Client{Transport: g})
	if err := c.fund(ctx, ch, counter); err != nil {
		t.Fatal(err)
	}
	g.armed.Store(true)
	sent := make(chan error, 1)
	go func() { _, err := w.Send(ctx, 100, nil); sent <- err }()
	<-g.held // the send is with the mint
	rep, err := c.Settle(ctx)
	close(g.release)
	if err != nil || rep.Open != 1 {
		t.Fatalf("settlement while a send is under way: %+v, %v; want the funded channel found open", rep, err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}
