package pay_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/circuittest"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/internal/relaynet"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/mint"
	"github.com/obolnet/obol/payment/wallet"
	"github.com/obolnet/obol/router"
)

// Default terms of the test relays: 1 sat per MiB and per circuit, a
// 64 KiB allowance, 512 KiB prepay window.
var testTerms = client.Terms{PerMiB: 1000, PerCircuit: 1000, PrepayBytes: 512 << 10, FreeBytes: 64 << 10}

// paidRelay is a relay that charges: router, ledger on disk, meter, its
// own wallet and settler.
type paidRelay struct {
	*relaynet.Relay
	dir     string
	key     *btcec.PrivateKey
	ledger  *payment.Ledger
	store   *payment.FileStore
	meter   *router.PaidMeter
	wallet  *wallet.Wallet
	settler *router.Settler
	crash   *crashTransport // the wallet's way to the mint

	mu      sync.Mutex
	settled []router.Settlement
}

type testNet struct {
	t       testing.TB
	mintURL string
	mint    *mint.Mint
	log     *eventLog // what the mint saw, among the tests' marks
	opts    netOpts
	net     *relaynet.Network
	relays  []*paidRelay
	links   *link.Manager
	terms   client.Terms
	grace   time.Duration
}

type netOpts struct {
	feePPK    uint64
	terms     client.Terms
	grace     time.Duration
	unpaid    bool // relays take no payment (baseline)
	noSettler bool // relays do not settle on their own
	clock     func() time.Time
	// settleDelay is the settlers' least delay (default 1 ms: tests
	// settle at once; benchmarks set more, so that settlers stay idle).
	settleDelay time.Duration
	// fundSleep, if set, is the clients' wait for their funding times.
	fundSleep func(context.Context, time.Duration) error
	// fundDelay, if set, is every client funding's delay (default: at
	// most 1 ms).
	fundDelay time.Duration
	// hsDir, if set, is every relay's store of hidden-service descriptors.
	hsDir router.HSDirectory
}

func newTestNet(t testing.TB, n int, o netOpts) *testNet {
	if o.terms == (client.Terms{}) {
		o.terms = testTerms
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	if o.settleDelay == 0 {
		o.settleDelay = time.Millisecond
	}
	log := &eventLog{}
	srv := mint.StartTest(t, mint.Config{Seed: []byte("paid circuits test mint seed"), Dir: t.TempDir(), Now: o.clock,
		Units: []mint.UnitConfig{{Unit: "sat", Order: 32, InputFeePPK: o.feePPK}}}, mint.ServerConfig{Wrap: log.observe})
	tn := &testNet{t: t, mintURL: srv.URL, mint: srv.Mint, log: log, terms: o.terms, grace: o.grace, opts: o}
	for range n {
		r := &paidRelay{dir: t.TempDir()}
		r.key, _ = btcec.NewPrivateKey()
		tn.relays = append(tn.relays, r)
	}
	tn.net = relaynet.Start(t, n, relaynet.Options{Router: tn.configure, Setup: tn.setup})
	for i, r := range tn.relays {
		r.Relay = tn.net.Relays[i]
	}
	tn.links = tn.net.Links
	return tn
}

// configure starts relay r's payment state from its directory, at each
// of its starts; the relays are paid but for the first start of an
// unpaid network's.
func (tn *testNet) configure(rr *relaynet.Relay, c *router.Config) {
	r := tn.relays[rr.Index]
	if tn.opts.unpaid && r.Relay == nil {
		return
	}
	tn.startPayments(r, rr.Host.ID())
	c.Meter = r.meter
}

// setup runs relay r's settler and sets its hidden-service directory.
func (tn *testNet) setup(rr *relaynet.Relay) error {
	r := tn.relays[rr.Index]
	if tn.opts.hsDir != nil {
		rr.Router.SetHSDirectory(tn.opts.hsDir)
	}
	if r.store == nil {
		return nil
	}
	store, w, settler := r.store, r.wallet, r.settler
	if !tn.opts.noSettler {
		rr.Go(func(ctx context.Context) { settler.Run(ctx) })
	}
	// A crash: no settlement, files closed.
	rr.Defer(func() { store.Close(); w.Close() })
	return nil
}

func (tn *testNet) startPayments(r *paidRelay, id peer.ID) {
	t := tn.t
	ks, _ := tn.mint.ActiveKeyset("sat")
	var recs []payment.LedgerRecord
	var err error
	if r.store, recs, err = payment.OpenFileStore(filepath.Join(r.dir, "ledger.jsonl")); err != nil {
		t.Fatal(err)
	}
	r.ledger, err = payment.NewLedger(payment.LedgerConfig{ReceiverKey: r.key, Store: r.store, Now: tn.opts.clock,
		Keyset: func(m, unit, id string) (payment.Keyset, error) {
			if m != tn.mintURL || unit != "sat" || id != ks.ID {
				return payment.Keyset{}, fmt.Errorf("mint, unit or keyset not accepted")
			}
			return ks, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ledger.Restore(recs); err != nil {
		t.Fatal(err)
	}
	r.meter, _ = router.NewPaidMeter(router.PaidConfig{Ledger: r.ledger, PerMiB: tn.terms.PerMiB,
		PerCircuit: tn.terms.PerCircuit, FreeBytes: tn.terms.FreeBytes, Grace: tn.grace})
	r.crash = newCrashTransport()
	r.wallet, err = wallet.Open(wallet.Config{Mint: tn.mintURL, Seed: []byte("relay wallet seed " + id.String()),
		Dir: r.dir, Now: tn.opts.clock, HTTPClient: &http.Client{Transport: r.crash}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.wallet.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.settler, err = router.NewSettler(router.SettlerConfig{Ledger: r.ledger, Wallet: r.wallet, ReceiverKey: r.key,
		Ended: r.meter.Ended, Delay: tn.opts.settleDelay, MaxDelay: 20 * tn.opts.settleDelay,
		Backoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Now: tn.opts.clock,
		OnSettled: func(s router.Settlement) { r.mu.Lock(); r.settled = append(r.settled, s); r.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
}

// delayLinks puts a forwarder delaying each packet by delay in front of
// every relay's QUIC address, and makes clients and relays use it.
func (tn *testNet) delayLinks(tb testing.TB, delay time.Duration) {
	for _, r := range tn.relays {
		if err := tn.net.Delay(r.Relay, relaynet.Link{Delay: delay}); err != nil {
			tb.Fatal(err)
		}
	}
}

func (r *paidRelay) relay(terms client.Terms) pay.RelayTerms {
	return pay.RelayTerms{ReceiverKey: r.key.PubKey(), Terms: terms}
}

func (r *paidRelay) settlements() []router.Settlement {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]router.Settlement(nil), r.settled...)
}

// testClient is a client with a wallet on disk and its channel book.
type testClient struct {
	dir      string
	wallet   *wallet.Wallet
	paid     *pay.Channels
	crash    *crashTransport
	capacity uint64 // if set, every channel's capacity
}

func (tn *testNet) newClient(t testing.TB, dir string, topUp uint64) *testClient {
	c := &testClient{dir: dir}
	tn.openClient(t, c)
	if topUp > 0 {
		if _, err := c.wallet.TopUp(context.Background(), topUp); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (tn *testNet) openClient(t testing.TB, c *testClient) {
	var err error
	c.crash = newCrashTransport()
	c.wallet, err = wallet.Open(wallet.Config{Mint: tn.mintURL, Seed: []byte("client wallet seed " + c.dir), Dir: c.dir,
		Now: tn.opts.clock, HTTPClient: &http.Client{Transport: c.crash}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.wallet.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	lo, hi := time.Microsecond, time.Millisecond
	if tn.opts.fundDelay != 0 {
		lo, hi = tn.opts.fundDelay, tn.opts.fundDelay
	}
	if c.paid, err = pay.OpenChannels(pay.ChannelsConfig{Wallet: c.wallet, Seed: []byte("client channel seed " + c.dir), Dir: c.dir,
		Now: tn.opts.clock, FundDelay: lo, FundMaxDelay: hi, Sleep: tn.opts.fundSleep}); err != nil {
		t.Fatal(err)
	}
}

func (c *testClient) close() {
	c.paid.Close()
	c.wallet.Close()
}

// paidCircuit is a circuit with its payments running.
type paidCircuit struct {
	*client.Circuit
	payers []client.HopPayer // the first channel of each hop
	pay    *client.Payments
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	renewed []client.HopPayer // channels opened when one was full
}

// allPayers are the payers of every channel the circuit opened.
func (pc *paidCircuit) allPayers() []client.HopPayer {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return append(append([]client.HopPayer(nil), pc.payers...), pc.renewed...)
}

// build builds a circuit through relays idx and starts paying it within
// budget msat (0: no bound).
func (tn *testNet) build(t testing.TB, c *testClient, budget uint64, idx ...int) *paidCircuit {
	path := tn.net.Path(idx...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	circ, err := client.Build(ctx, tn.links, path)
	if err != nil {
		t.Fatal(err)
	}
	pc := &paidCircuit{Circuit: circ, done: make(chan error, 1)}
	if c == nil {
		t.Cleanup(func() { circ.Close() })
		return pc
	}
	var hops []client.HopPayment
	for _, i := range idx {
		r := tn.relays[i].relay(tn.terms)
		share := budget / uint64(len(idx))
		if budget == 0 {
			share = math.MaxUint64 / 1024 // no bound: the largest capacity
		}
		capacity, err := c.paid.Capacity(share, r)
		if err != nil {
			t.Fatal(err)
		}
		if c.capacity != 0 {
			capacity = c.capacity
		}
		p := c.paid.HopPayer(r, capacity)
		pc.payers = append(pc.payers, p)
		next := func() client.HopPayer {
			p := c.paid.HopPayer(r, capacity)
			pc.mu.Lock()
			pc.renewed = append(pc.renewed, p)
			pc.mu.Unlock()
			return p
		}
		hops = append(hops, client.HopPayment{Payer: p, Terms: tn.terms, Next: next})
	}
	if pc.pay, err = client.NewPayments(circ, client.PayConfig{Hops: hops, Budget: budget}); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(context.Background())
	pc.cancel = pcancel
	go func() { pc.done <- pc.pay.Run(pctx) }()
	t.Cleanup(func() { circ.Close(); pcancel() })
	return pc
}

// stopPaying ends the circuit's payments and waits for them.
func (pc *paidCircuit) stopPaying() error {
	pc.cancel()
	return <-pc.done
}

// dataServer serves /bytes/N: N pseudo-random bytes, the same every time.
func dataServer(t testing.TB) (port uint16, sum func(n int) [32]byte) {
	return circuittest.StartDataServer(t)
}

// get fetches /bytes/n over conn and returns the body's hash; progress,
// if set, is told of every chunk read.
func get(conn net.Conn, n int, progress func(int)) ([32]byte, error) {
	return circuittest.FetchBytes(conn, n, progress)
}

var errCrashed = errors.New("process crashed")

// crashTransport reaches the mint until it is armed: the armed-th request
// from then on is the process's last — sent to the mint first if after is
// set (the answer is lost), not sent otherwise — and every later request
// fails, as if the process had died.
type crashTransport struct {
	armed   atomic.Int32
	after   atomic.Bool
	crashed chan struct{}
	once    sync.Once
	// before, if set (a func(*http.Request)), sees each request first:
	// a test holds requests at the mint's door with it.
	before atomic.Value
}

func newCrashTransport() *crashTransport { return &crashTransport{crashed: make(chan struct{})} }

// arm crashes on the n-th request from now (n ≥ 1).
func (c *crashTransport) arm(n int, after bool) {
	c.after.Store(after)
	c.armed.Store(int32(n))
}

func (c *crashTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f, ok := c.before.Load().(func(*http.Request)); ok {
		f(r)
	}
	select {
	case <-c.crashed:
		return nil, errCrashed
	default:
	}
	if c.armed.Load() > 0 && c.armed.Add(-1) == 0 {
		if c.after.Load() {
			if resp, err := http.DefaultTransport.RoundTrip(r); err == nil {
				resp.Body.Close()
			}
		}
		c.once.Do(func() { close(c.crashed) })
		return nil, errCrashed
	}
	return http.DefaultTransport.RoundTrip(r)
}
