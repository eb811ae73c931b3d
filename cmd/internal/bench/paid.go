package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/mint"
	"github.com/obolnet/obol/payment/wallet"
	"github.com/obolnet/obol/router"
)

// paidNet is a network whose relays charge pay.DefaultTerms, with the
// test mint over HTTP and a funded client wallet.
type paidNet struct {
	*testnet
	dir    string
	mint   *mint.TestServer
	keys   []*btcec.PrivateKey
	meters []*router.PaidMeter
	stores []*payment.FileStore
	wallet *wallet.Wallet
	client *pay.Channels
}

func startPaidNet(ctx context.Context, n int, l Link) (_ *paidNet, err error) {
	pn := &paidNet{}
	if pn.dir, err = os.MkdirTemp("", "obol-bench-paid-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			pn.Close()
		}
	}()
	url, err := pn.startMint()
	if err != nil {
		return nil, err
	}
	ks, ok := pn.mint.ActiveKeyset("sat")
	if !ok {
		return nil, errors.New("bench: test mint has no sat keyset")
	}
	for i := range n {
		if err := pn.startMeter(i, url, ks); err != nil {
			return nil, err
		}
	}
	if pn.testnet, err = startNetwork(n, l, func(i int) router.Meter { return pn.meters[i] }); err != nil {
		return nil, err
	}
	return pn, pn.openWallet(ctx, url)
}

func (pn *paidNet) startMint() (string, error) {
	m, err := mint.Start(mint.Config{Seed: []byte("obol bench test mint seed"), Dir: filepath.Join(pn.dir, "mint"),
		Units: []mint.UnitConfig{{Unit: "sat", Order: 32}}}, mint.ServerConfig{})
	if err != nil {
		return "", err
	}
	pn.mint = m
	return m.URL, nil
}

// startMeter gives relay i a ledger on disk and a meter at the default
// terms; its settler is left out (nothing is settled during a run).
func (pn *paidNet) startMeter(i int, url string, ks payment.Keyset) error {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return err
	}
	store, _, err := payment.OpenFileStore(filepath.Join(pn.dir, fmt.Sprintf("ledger-%d.jsonl", i)))
	if err != nil {
		return err
	}
	pn.stores = append(pn.stores, store)
	ledger, err := payment.NewLedger(payment.LedgerConfig{ReceiverKey: key, Store: store,
		Keyset: func(m, unit, id string) (payment.Keyset, error) {
			if m != url || unit != "sat" || id != ks.ID {
				return payment.Keyset{}, errors.New("mint, unit or keyset not accepted")
			}
			return ks, nil
		}})
	if err != nil {
		return err
	}
	t := pay.DefaultTerms
	meter, err := router.NewPaidMeter(router.PaidConfig{Ledger: ledger, PerMiB: t.PerMiB, PerCircuit: t.PerCircuit, FreeBytes: t.FreeBytes})
	if err != nil {
		return err
	}
	pn.keys = append(pn.keys, key)
	pn.meters = append(pn.meters, meter)
	return nil
}

// paidTopUp is what the client's wallet is funded with, in sat.
const paidTopUp = 200_000

func (pn *paidNet) openWallet(ctx context.Context, url string) error {
	dir := filepath.Join(pn.dir, "client")
	seed := make([]byte, 32)
	rand.Read(seed)
	w, err := wallet.Open(wallet.Config{Mint: url, Seed: seed, Dir: dir})
	if err != nil {
		return err
	}
	pn.wallet = w
	if err := w.Load(ctx); err != nil {
		return err
	}
	if _, err := w.TopUp(ctx, paidTopUp); err != nil {
		return fmt.Errorf("bench: top up the client wallet: %w", err)
	}
	pn.client, err = pay.OpenChannels(pay.ChannelsConfig{Wallet: w, Seed: seed, Dir: dir})
	return err
}

// paidCircuit is a circuit whose payments run until it is closed.
type paidCircuit struct {
	*client.Circuit
	pay  *client.Payments
	stop context.CancelFunc
	done chan error
}

// build builds a circuit along path and starts paying for it, within
// budget msat.
func (pn *paidNet) build(ctx context.Context, path []client.Hop, budget uint64) (*paidCircuit, error) {
	c, err := client.Build(ctx, pn.testnet.client, path)
	if err != nil {
		return nil, err
	}
	relays := make([]pay.RelayTerms, len(path))
	capacities := make([]uint64, len(path))
	for i := range path {
		relays[i] = pay.RelayTerms{ReceiverKey: pn.keys[i].PubKey(), Terms: pay.DefaultTerms}
		capacity, err := pn.client.Capacity(budget/uint64(len(path)), relays[i])
		if err != nil {
			c.Close()
			return nil, err
		}
		capacities[i] = capacity
	}
	hops := pn.client.CircuitHops(relays, capacities)
	pay, err := client.NewPayments(c, client.PayConfig{Hops: hops, Budget: budget})
	if err != nil {
		c.Close()
		return nil, err
	}
	pctx, stop := context.WithCancel(context.Background())
	pc := &paidCircuit{Circuit: c, pay: pay, stop: stop, done: make(chan error, 1)}
	go func() { pc.done <- pay.Run(pctx) }()
	return pc, nil
}

// Close closes the circuit and waits for its payments to end.
func (pc *paidCircuit) Close() error {
	err := pc.Circuit.Close()
	pc.stop()
	<-pc.done
	return err
}

func (pn *paidNet) pauses() uint64 {
	var n uint64
	for _, m := range pn.meters {
		n += m.Pauses()
	}
	return n
}

// Close stops everything and removes the run's files; idempotent.
func (pn *paidNet) Close() {
	if pn.testnet != nil {
		pn.testnet.Close()
	}
	if pn.client != nil {
		pn.client.Close()
		pn.client = nil
	}
	if pn.wallet != nil {
		pn.wallet.Close()
		pn.wallet = nil
	}
	for _, s := range pn.stores {
		s.Close()
	}
	pn.stores = nil
	if pn.mint != nil {
		pn.mint.Close()
		pn.mint = nil
	}
	if pn.dir != "" {
		os.RemoveAll(pn.dir)
		pn.dir = ""
	}
}

// paidBudget bounds what one bulk circuit may spend, in msat.
const paidBudget = 12_000_000

// measurePayment compares a paid circuit with an unpaid one over networks
// of the same shape, alternating: bulk over one circuit each, then time to
// first byte on fresh circuits (paid ones fund their channels meanwhile).
func (b *run) measurePayment(ctx context.Context) error {
	b.step("payment: starting the test mint and paid relays")
	pn, err := startPaidNet(ctx, b.cfg.Hops, b.cfg.Link)
	if err != nil {
		return fmt.Errorf("bench: paid network: %w", err)
	}
	defer pn.Close()
	path := pn.FirstN(b.cfg.Hops)
	if err := pn.warm(ctx, path); err != nil {
		return err
	}
	// The unpaid circuit runs on a network of its own shaped like the paid
	// one, so that the two differ only in payments.
	fn, err := startNetwork(b.cfg.Hops, b.cfg.Link, nil)
	if err != nil {
		return err
	}
	defer fn.Close()
	if err := fn.warm(ctx, fn.FirstN(b.cfg.Hops)); err != nil {
		return err
	}
	free, err := client.Build(ctx, fn.client, fn.FirstN(b.cfg.Hops))
	if err != nil {
		return err
	}
	defer free.Close()
	pc, err := pn.build(ctx, path, paidBudget)
	if err != nil {
		return fmt.Errorf("bench: paid circuit: %w", err)
	}
	defer pc.Close()
	p := &Payment{Measured: true}
	if err := b.paidBulk(ctx, p, free, pc); err != nil {
		return err
	}
	sent, got := pc.pay.Cells()
	p.PaymentShare = float64((sent+got)*circuit.CellSize) / float64(p.Bytes)
	if err := b.paidTTFB(ctx, p, pn, fn); err != nil {
		return err
	}
	p.Pauses = pn.pauses()
	b.rep.Payment = p
	return nil
}

// paidBulk fetches PaymentChunk bytes over the unpaid and the paid
// circuit in turn, PaymentPairs times, alternating which goes first, and
// compares the total times: short alternating transfers see the same
// load on a shared machine, where long ones would not.
func (b *run) paidBulk(ctx context.Context, p *Payment, free *client.Circuit, pc *paidCircuit) error {
	var took [2]time.Duration
	circs := [2]*client.Circuit{free, pc.Circuit}
	pairs, chunk := b.cfg.PaymentPairs(), b.cfg.PaymentChunk()
	for pair := range pairs {
		for k := range 2 {
			i := (k + pair) % 2
			b.step(fmt.Sprintf("payment: bulk, %s (%d/%d)", [2]string{"unpaid", "paid"}[i], pair+1, pairs))
			start := time.Now()
			err := b.fetchOn(ctx, func(ctx context.Context, _ int) (io.ReadWriteCloser, error) {
				return circs[i].Dial(ctx, "127.0.0.1", b.srv.port)
			}, 0, chunk)
			if err != nil {
				return fmt.Errorf("bench: payment bulk: %w", err)
			}
			took[i] += time.Since(start)
		}
	}
	bytes := float64(pairs * chunk)
	p.UnpaidMBps, p.PaidMBps = bytes/took[0].Seconds()/1e6, bytes/took[1].Seconds()/1e6
	p.Ratio = p.PaidMBps / p.UnpaidMBps
	p.Bytes = int64(bytes)
	return nil
}

// paidTTFB times fresh circuits to the first byte, unpaid and paid
// alternately; closing (and, paid, the end of the payments) is not timed.
func (b *run) paidTTFB(ctx context.Context, p *Payment, pn *paidNet, fn *testnet) error {
	var samples [2][]float64
	for i := range b.cfg.PaidTTFBSamples() {
		for k := range 2 {
			b.step(fmt.Sprintf("payment: first byte, %s (%d/%d)", [2]string{"unpaid", "paid"}[k], i+1, b.cfg.PaidTTFBSamples()))
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			d, err := b.paidFirstByte(sctx, pn, fn, k == 1)
			cancel()
			if err != nil {
				return fmt.Errorf("bench: payment first byte: %w", err)
			}
			samples[k] = append(samples[k], ms(d))
		}
	}
	p.UnpaidTTFB, p.PaidTTFB = quantile(samples[0], 0.5), quantile(samples[1], 0.5)
	return nil
}

func (b *run) paidFirstByte(ctx context.Context, pn *paidNet, fn *testnet, pay bool) (time.Duration, error) {
	start := time.Now()
	var c io.Closer
	var dial func() (*client.Stream, error)
	if pay {
		pc, err := pn.build(ctx, pn.FirstN(b.cfg.Hops), 300_000)
		if err != nil {
			return 0, err
		}
		c, dial = pc, func() (*client.Stream, error) { return pc.Dial(ctx, "127.0.0.1", b.srv.port) }
	} else {
		fc, err := client.Build(ctx, fn.client, fn.FirstN(b.cfg.Hops))
		if err != nil {
			return 0, err
		}
		c, dial = fc, func() (*client.Stream, error) { return fc.Dial(ctx, "127.0.0.1", b.srv.port) }
	}
	defer c.Close()
	s, err := dial()
	if err != nil {
		return 0, err
	}
	if _, err := s.Write(request(ttfbSize)); err != nil {
		return 0, err
	}
	err = firstByte(s)
	return time.Since(start), err
}
