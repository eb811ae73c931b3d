package pay_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/wallet"
)

// event is one thing the mint saw (kind "mint"), one request the client's
// MintTransport carried (kind "sent", with its operation), or a test's
// mark: all in one order.
type event struct {
	kind string
	path string
	op   pay.MintOp
	body []byte
}

type eventLog struct {
	mu sync.Mutex
	ev []event
}

func (l *eventLog) add(e event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
}

func (l *eventLog) events() []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]event(nil), l.ev...)
}

func readBody(r *http.Request) []byte {
	if r.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// observe records every request that reaches the mint's handler.
func (l *eventLog) observe(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.add(event{kind: "mint", path: r.URL.Path, body: readBody(r)})
		h.ServeHTTP(w, r)
	})
}

// transport is a client's MintTransport: it records each request with its
// operation and sends it over a fresh connection (pay.DialerTransport).
func (l *eventLog) transport() pay.MintTransport {
	direct := pay.DialerTransport(func(ctx context.Context, _ pay.MintOp, network, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	})
	return pay.MintTransportFunc(func(op pay.MintOp, r *http.Request) (*http.Response, error) {
		if got, ok := pay.MintOpFrom(r.Context()); !ok || got != op {
			return nil, fmt.Errorf("request's context names operation %v, transport given %v", got, op)
		}
		l.add(event{kind: "sent", path: r.URL.Path, op: op, body: readBody(r)})
		return direct.RoundTrip(op, r)
	})
}

// gate holds fundings back until it is opened, counting those waiting.
type gate struct {
	open    chan struct{}
	waiting atomic.Int32
	mu      sync.Mutex
	delays  []time.Duration
}

func (g *gate) sleep(ctx context.Context, d time.Duration) error {
	g.mu.Lock()
	g.delays = append(g.delays, d)
	g.mu.Unlock()
	g.waiting.Add(1)
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// anonClient is a client whose wallet reaches the mint only through the
// recording transport, with a manager that pays its circuits.
type anonClient struct {
	w     *wallet.Wallet
	chans *pay.Channels
	m     *client.CircuitManager
	stop  func() // stops the manager, closing its circuits
}

func (tn *testNet) anonClient(t *testing.T, g *gate, topUp uint64, bundles int) *anonClient {
	ctx := context.Background()
	dir := t.TempDir()
	w, err := pay.OpenWallet(pay.WalletConfig{Dir: dir, Mint: tn.mintURL, Transport: tn.log.transport()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Load(pay.WithMintOp(ctx, pay.NewMintOp(pay.MintKeysets))); err != nil {
		t.Fatal(err)
	}
	if _, err := w.TopUp(ctx, topUp); err != nil { // an operation of its own (class pool)
		t.Fatal(err)
	}
	chans, err := pay.OpenChannels(pay.ChannelsConfig{Wallet: w, Seed: []byte("anonymous client channel seed"), Dir: dir,
		FundDelay: time.Second, FundMaxDelay: 8 * time.Second, Sleep: g.sleep})
	if err != nil {
		t.Fatal(err)
	}
	// The pool, filled ahead of need, for the capacity Paths gives a hop.
	if n, err := chans.FillPool(ctx, bundles, []uint64{tn.pathCapacity(t, chans)}); err != nil || n != bundles {
		t.Fatalf("pool holds %d fundings (%v), want %d", n, err, bundles)
	}
	var descs []*descriptor.Relay
	for _, r := range tn.relays {
		descs = append(descs, tn.descriptorOf(r))
	}
	paths := &pay.Paths{C: chans}
	m, err := client.NewCircuitManager(client.Config{Links: tn.links, Directory: client.DirectoryFunc(func() []*descriptor.Relay { return descs }),
		AllowSameSubnet: true, Prebuilt: -1, Usable: chans.Usable, Pay: paths.Pay})
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.Run(mctx); close(done) }()
	ac := &anonClient{w: w, chans: chans, m: m}
	ac.stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(func() { ac.stop(); chans.Close(); w.Close() })
	return ac
}

// pathCapacity is the capacity Paths gives a channel to a test relay.
func (tn *testNet) pathCapacity(t *testing.T, chans *pay.Channels) uint64 {
	r := tn.relays[0].relay(tn.terms)
	c, err := chans.Capacity(r.Terms.Owed(pay.DefaultWindow+r.Terms.PrepayBytes), r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// channelIndex is what the relays know of their channels, as colluders
// pooling their books with the mint would: every output and secret of
// every channel (all derived from the channel secret both ends hold).
type channelIndex map[string]payment.ChannelID

func (tn *testNet) channelIndex(t *testing.T) channelIndex {
	idx := channelIndex{}
	for _, r := range tn.relays {
		for _, st := range r.ledger.Channels() {
			ch, ok := r.ledger.Channel(st.ID)
			if !ok {
				t.Fatalf("relay lost channel %s", st.ID)
			}
			sender, err := ch.SenderOutputs()
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range append(ch.FundingOutputs(), sender...) {
				idx[o.BHex] = st.ID
				idx[o.Secret] = st.ID
				Y, err := payment.HashToCurve([]byte(o.Secret))
				if err != nil {
					t.Fatal(err)
				}
				idx[hex.EncodeToString(Y.SerializeCompressed())] = st.ID
			}
		}
	}
	return idx
}

// channelsOf are the channels a request to the mint names, as the
// colluders read it: by its outputs, its inputs' secrets and its Ys.
func (idx channelIndex) channelsOf(body []byte) map[payment.ChannelID]bool {
	var req struct {
		Inputs  []payment.Proof          `json:"inputs"`
		Outputs []payment.BlindedMessage `json:"outputs"`
		Ys      []string                 `json:"Ys"`
	}
	json.Unmarshal(body, &req)
	got := map[payment.ChannelID]bool{}
	note := func(k string) {
		if id, ok := idx[k]; ok {
			got[id] = true
		}
	}
	for _, p := range req.Inputs {
		note(p.Secret)
	}
	for _, o := range req.Outputs {
		note(o.B)
	}
	for _, y := range req.Ys {
		note(y)
	}
	return got
}

// A paid circuit's build makes no mint request: builds complete, and
// their first bytes arrive, while every funding is held back, and the
// mint sees nothing between a build's start and its first byte. The
// channels are funded afterwards, each hop at its own drawn time, from
// the pool (no split on demand), each through an isolation of its own.
// Then, as a mint and every relay pooling what they know would look: no
// request and no isolation key touches two channels, and no isolation key
// serves two classes of operation — not in funding, not in settlement.
func TestPaymentsLinkNothing(t *testing.T) {
	const builds = 3
	port, sum := dataServer(t)
	tn := newTestNet(t, 3, netOpts{})
	g := &gate{open: make(chan struct{})}
	ac := tn.anonClient(t, g, 20_000, 3*builds)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var conns []net.Conn
	for i := range builds {
		tn.log.add(event{kind: "mark", path: fmt.Sprintf("build %d start", i)})
		conn, err := ac.m.DialIsolated(ctx, client.NewIsolationKey(fmt.Sprint("build ", i)), "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		const first = 16 << 10 // within the relays' free allowance
		if got, err := get(conn, first, nil); err != nil || got != sum(first) {
			t.Fatalf("build %d: first bytes: %v (hash ok %v)", i, err, got == sum(first))
		}
		tn.log.add(event{kind: "mark", path: fmt.Sprintf("build %d end", i)})
		conns = append(conns, conn)
	}
	inBuild := false
	for _, e := range tn.log.events() {
		switch {
		case e.kind == "mark":
			inBuild = !inBuild
		case inBuild:
			t.Errorf("%s %s during a build", e.kind, e.path)
		}
	}
	waitFor(t, "every circuit's first funding to wait for its time", func() bool { return g.waiting.Load() >= builds || t.Failed() })
	close(g.open)
	// Funded, and paid for its circuit: a channel its relay holds at
	// balance zero stays locked until its expiry (nothing for the relay
	// to close), and the settlement below could not reach it.
	waitFor(t, "every hop's channel to be funded and paid", func() bool {
		n := 0
		for _, r := range tn.relays {
			for _, c := range r.ledger.Channels() {
				if c.Balance > 0 {
					n++
				}
			}
		}
		return n == 3*builds
	})
	if n := ac.chans.Splits(); n != 0 {
		t.Errorf("%d fundings split proofs on demand; the pool should have held them", n)
	}
	for _, c := range conns {
		c.Close()
	}
	ac.stop() // closes the circuits: relays close their channels
	waitFor(t, "relays to settle", tn.allSettled)
	// A batch settles some channels, taken at random, after random pauses.
	ctx = context.Background()
	batch, err := pay.SettleBatch(ac.chans, ctx, 2, time.Millisecond)
	if err != nil || batch.Settled != 2 {
		t.Fatalf("a batch of 2: %+v, %v", batch, err)
	}
	rep, err := ac.chans.Settle(ctx)
	if err != nil || rep.Settled != 3*builds-2 {
		t.Fatalf("client settlement: %+v, %v", rep, err)
	}
	rep.Reclaimed += batch.Reclaimed

	idx := tn.channelIndex(t)
	classOf := map[[32]byte]pay.MintClass{}
	channelOf := map[[32]byte]payment.ChannelID{}
	funded := map[payment.ChannelID]bool{}
	for _, e := range tn.log.events() {
		if e.kind != "sent" {
			continue
		}
		if c, ok := classOf[e.op.Key]; ok && c != e.op.Class {
			t.Errorf("isolation key used for %s and %s", c, e.op.Class)
		}
		classOf[e.op.Key] = e.op.Class
		chans := idx.channelsOf(e.body)
		if len(chans) > 1 {
			t.Errorf("one %s request (%s) names %d channels", e.path, e.op.Class, len(chans))
		}
		for id := range chans {
			if prev, ok := channelOf[e.op.Key]; ok && prev != id {
				t.Errorf("one isolation key (%s) carries two channels", e.op.Class)
			}
			channelOf[e.op.Key] = id
			if e.path == "/v1/swap" && e.op.Class == pay.MintFund {
				funded[id] = true
			}
			if e.op.Class != pay.MintFund && e.op.Class != pay.MintSettle {
				t.Errorf("a request of class %s names a channel", e.op.Class)
			}
		}
	}
	if len(funded) != 3*builds {
		t.Errorf("%d channels funded through class fund, want %d", len(funded), 3*builds)
	}
	if rep.Reclaimed == 0 {
		t.Error("settlement reclaimed nothing: the test saw no restore")
	}
}
