package pay_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment/mint"
	"github.com/obolnet/obol/payment/wallet"
)

// awayTransport reaches the mint unless it is away.
type awayTransport struct{ away atomic.Bool }

func (a *awayTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if a.away.Load() {
		return nil, errors.New("connection refused")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// Once a funding finds the mint unreachable, Pay refuses paid paths at
// once with ErrMintUnreachable, rather than let the manager build
// circuits that cannot pay (their first stream would be cut after the
// relays' free allowance); after the back-off it tries again, and a
// funding that reaches the mint ends the refusals.
func TestPayRefusedWhileMintUnreachable(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	tr := &awayTransport{}
	f := newOneHopFunding(t, "mint away", &http.Client{Transport: tr},
		pay.ChannelsConfig{Now: clock, FundDelay: time.Microsecond, FundMaxDelay: time.Millisecond}, clock)
	w, paths, path, open := f.w, f.paths, f.path, f.open
	if err := open(); err != nil {
		t.Fatal(err)
	}
	tr.away.Store(true)
	if err := open(); !errors.Is(err, pay.ErrMintUnreachable) {
		t.Fatalf("funding with the mint away: %v, want ErrMintUnreachable", err)
	}
	if _, err := paths.Pay(path); !errors.Is(err, pay.ErrMintUnreachable) {
		t.Fatalf("Pay right after: %v, want ErrMintUnreachable", err)
	}
	now = now.Add(5 * time.Second) // the back-off is over: try again
	if err := open(); !errors.Is(err, pay.ErrMintUnreachable) {
		t.Fatalf("funding with the mint still away: %v, want ErrMintUnreachable", err)
	}
	now = now.Add(5 * time.Second) // the back-off doubled: 10 s
	if _, err := paths.Pay(path); !errors.Is(err, pay.ErrMintUnreachable) {
		t.Fatalf("Pay within the doubled back-off: %v, want ErrMintUnreachable", err)
	}
	tr.away.Store(false)
	now = now.Add(5 * time.Second)
	if err := open(); err != nil {
		t.Fatalf("funding once the mint is back: %v", err)
	}
	if _, err := paths.Pay(path); err != nil {
		t.Fatalf("Pay after a funding reached the mint: %v", err)
	}
	if n, err := w.Recover(ctx); err != nil || n != 0 {
		t.Fatalf("recovering the fundings cut short: %d left, %v", n, err)
	}
}

// A funding whose request never left — no circuit to the mint could be
// built, as right after relays died — is tried again on new circuits
// after short pauses, and leaves nothing pending: the circuit it pays for
// is not closed at the first miss, and paid paths are not refused.
func TestFundingRetriedWhenNoCircuitReachesTheMint(t *testing.T) {
	var fail atomic.Int32 // dials to refuse
	dials := pay.DialerTransport(func(ctx context.Context, _ pay.MintOp, network, addr string) (net.Conn, error) {
		if fail.Add(-1) >= 0 {
			return nil, errors.New("client: 3 paths failed")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	})
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return dials.RoundTrip(pay.NewMintOp(pay.MintFund), r)
	})}
	var slept []time.Duration
	f := newOneHopFunding(t, "never sent", hc, pay.ChannelsConfig{FundDelay: time.Microsecond, FundMaxDelay: time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error {
			if d >= 100*time.Millisecond {
				slept = append(slept, d)
			}
			return ctx.Err()
		}}, nil)
	w, paths, path, open := f.w, f.paths, f.path, f.open

	fail.Store(3)
	if err := open(); err != nil {
		t.Fatalf("funding after 3 dials to the mint failed: %v", err)
	}
	if want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}; !slices.Equal(slept, want) {
		t.Fatalf("paused %v before the tries, want %v", slept, want)
	}
	if n := w.Pending(); n != 0 {
		t.Fatalf("the tries that never left left %d operations pending", n)
	}
	if _, err := paths.Pay(path); err != nil {
		t.Fatalf("Pay after a funding reached the mint on a later try: %v", err)
	}

	fail.Store(100) // the mint stays out of reach: the funding fails, after its tries
	slept = nil
	if err := open(); !errors.Is(err, pay.ErrMintUnreachable) || !errors.Is(err, wallet.ErrNotSent) {
		t.Fatalf("funding with no circuit to the mint: %v, want ErrMintUnreachable", err)
	}
	if len(slept) != 4 {
		t.Fatalf("tried %d times, want 5", len(slept)+1)
	}
	if n := w.Pending(); n != 0 {
		t.Fatalf("fundings that never left left %d operations pending", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// oneHopFunding is a wallet of 10,000 sat at a test mint, reached
// through hc, its channels (cc, given its wallet and seed here) and a
// paid one-hop path to fund channels on.
type oneHopFunding struct {
	w     *wallet.Wallet
	paths *pay.Paths
	path  []*descriptor.Relay
}

func newOneHopFunding(t *testing.T, name string, hc *http.Client, cc pay.ChannelsConfig, now func() time.Time) *oneHopFunding {
	t.Helper()
	ctx := context.Background()
	srv := mint.StartTest(t, mint.Config{Seed: []byte("paid " + name + " test mint seed")}, mint.ServerConfig{})
	w, err := wallet.Open(wallet.Config{Mint: srv.URL, Seed: []byte("paid " + name + " test wallet"), Dir: t.TempDir(),
		HTTPClient: hc, Now: now})
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
	cc.Wallet, cc.Seed = w, []byte("paid "+name+" test channels")
	c, err := pay.OpenChannels(cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ks, _ := w.Keyset()
	key, _ := btcec.NewPrivateKey()
	path := []*descriptor.Relay{{Price: descriptor.Price{PerMiB: 1000, PerCircuit: 1000},
		Payment: descriptor.Payment{Mints: []descriptor.AcceptedMint{{URL: srv.URL, Unit: "sat", Keysets: []string{ks.ID}}},
			ReceiverKey: key.PubKey().SerializeCompressed(), PrepayBytes: 1 << 20, FreeBytes: 128 << 10}}}
	return &oneHopFunding{w: w, paths: &pay.Paths{C: c}, path: path}
}

// open pays the path and opens its channel.
func (f *oneHopFunding) open() error {
	pc, err := f.paths.Pay(f.path)
	if err != nil {
		return err
	}
	_, err = pc.Hops[0].Payer.Open(context.Background())
	return err
}
