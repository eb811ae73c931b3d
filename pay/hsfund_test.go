package pay_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/keyfile"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment"
)

// memHSDir is the relays' shared store of hidden-service descriptors.
type memHSDir struct {
	mu   sync.Mutex
	recs map[[32]byte][]byte
}

func (d *memHSDir) FetchHS(_ context.Context, index [32]byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec, ok := d.recs[index]
	if !ok {
		return nil, fmt.Errorf("no record")
	}
	return rec, nil
}

func (d *memHSDir) StoreHS(_ context.Context, rec []byte) error {
	u, err := descriptor.DecodeHS(rec)
	if err != nil {
		return err
	}
	r, err := u.Verify(time.Now())
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recs[r.Index()] = append([]byte(nil), rec...)
	return nil
}

// hsNet is a paid network with hidden-service roles: every relay is a
// guard, an intro and a rendezvous point, and charges.
type hsNet struct {
	*testNet
	descs []*descriptor.Relay
}

func newHSNet(t *testing.T, n int) *hsNet {
	tn := newTestNet(t, n, netOpts{hsDir: &memHSDir{recs: map[[32]byte][]byte{}}})
	hn := &hsNet{testNet: tn}
	for _, r := range tn.relays {
		d := tn.descriptorOf(r)
		d.Roles |= descriptor.RoleIntro | descriptor.RoleRendezvous
		hn.descs = append(hn.descs, d)
	}
	return hn
}

// endpoint is a hidden.Config on a host of its own, paid by p.
func (hn *hsNet) endpoint(t *testing.T, p *pay.Payer) hidden.Config {
	lm, _, err := hn.net.NewLinks()
	if err != nil {
		t.Fatal(err)
	}
	n := hidden.Config{Links: lm, Directory: client.DirectoryFunc(func() []*descriptor.Relay { return hn.descs })}
	if p != nil {
		n.Pay = p.Pay
	}
	return n
}

// payer opens a payer over a wallet in dir holding topUp sat.
func (hn *hsNet) payer(t *testing.T, dir string, transport pay.MintTransport, topUp uint64, standby pay.StandbyConfig) *pay.Payer {
	ctx := context.Background()
	wc := pay.WalletConfig{Dir: dir, Mint: hn.mintURL, Transport: transport, DirectMintConnectionUnsafe: transport == nil}
	p, err := pay.OpenPayer(ctx, pay.PayerConfig{Wallet: wc, FundDelay: time.Millisecond, FundMaxDelay: 20 * time.Millisecond,
		Standby: standby})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := p.Wallet().TopUp(ctx, topUp); err != nil {
		t.Fatal(err)
	}
	return p
}

// sendersOf are the channel keys a wallet directory's seed derives: the
// first n channels it can open.
func sendersOf(t *testing.T, dir string, n int) map[string]bool {
	seed, err := keyfile.Load(filepath.Join(dir, pay.ChannelSeedFile), 32)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for i := range n {
		k, err := payment.ChannelKey(seed, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		out[hex.EncodeToString(k.PubKey().SerializeCompressed())] = true
	}
	return out
}

// openedChannels counts the channels of a set of senders the relays
// have accepted; each channel is looked at once, so that polling it stays
// cheap as channels accumulate.
type openedChannels struct {
	senders map[string]bool
	checked map[payment.ChannelID]bool
	n       int
}

func newOpened(senders map[string]bool) *openedChannels {
	return &openedChannels{senders: senders, checked: map[payment.ChannelID]bool{}}
}

// opened is how many of o's senders' channels the relays have accepted.
func (hn *hsNet) opened(o *openedChannels) int {
	for _, r := range hn.relays {
		for _, st := range r.ledger.Channels() {
			if o.checked[st.ID] {
				continue
			}
			ch, ok := r.ledger.Channel(st.ID)
			if !ok {
				continue
			}
			o.checked[st.ID] = true
			if o.senders[hex.EncodeToString(ch.Params().Sender.SerializeCompressed())] {
				o.n++
			}
		}
	}
	return o.n
}

// echo answers each connection's line with n bytes.
func echo(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			var n int
			fmt.Sscan(line, &n)
			c.Write(make([]byte, n))
		}()
	}
}

// introductionFundings runs a hidden service that pays its circuits and
// has a client introduce itself intros times, as a client working with the
// mint would: it notes when each introduction starts and when the
// service's rendezvous circuit has opened its channels to the relays, and
// reads, in the requests the service's wallet sent to the mint (each with
// its class, in one order with the marks), the swaps that fall between.
// It returns how many it found, and how many standby channels the
// service funded in all.
func introductionFundings(t *testing.T, intros int, standby bool) (inWindows, standbyFundings int) {
	hn := newHSNet(t, 7)
	svcDir := t.TempDir()
	const per = 10 // a refill after every 10 introductions keeps each relay stocked; a fixed stock
	// The service locks its money ahead of need: the pool's fundings, and
	// standby channels for every guard and vanguard, refilled as they are
	// used, that come back only at their expiry. On a loaded machine its
	// intro and rendezvous circuits are built again more often, and a
	// wallet that ran dry would close them as they are built: the test
	// needs the service to have enough, not to run short.
	const svcFunds = 1_000_000
	svcPay := hn.payer(t, svcDir, hn.log.transport(), svcFunds, pay.StandbyConfig{Per: per, MaxPer: per, Every: time.Hour})
	const cliFunds = 1_000_000
	cliPay := hn.payer(t, t.TempDir(), nil, cliFunds, pay.StandbyConfig{})
	defer func() {
		t.Logf("the service's wallet holds %d of %d sat, the client's %d of %d",
			svcPay.Wallet().Balance(), svcFunds, cliPay.Wallet().Balance(), cliFunds)
	}()
	// The pool holds exact fundings, as a running payer's would: a swap
	// left pending by a circuit that closed during it locks one bundle,
	// not the wallet's largest proof.
	capacity := hn.pathCapacity(t, svcPay.Channels())
	if n, err := svcPay.Channels().FillPool(context.Background(), 150, []uint64{capacity}); err != nil || n < 100 {
		t.Fatalf("pool holds %d fundings (%v)", n, err)
	}
	svcNet := hn.endpoint(t, svcPay)
	paidHops := 3 // guard, vanguard, rendezvous point: each funded after the build
	if standby {
		svcNet.Standby = svcPay.Standby()
		paidHops = 2 // guard and vanguard from standby channels; the rendezvous point bills the client
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Config: svcNet, Key: key, Intros: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go echo(l)
	cli, err := hidden.NewConnector(hn.endpoint(t, cliPay))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })

	opened := newOpened(sendersOf(t, svcDir, 2000))
	waitFor(t, "the intro circuits' channels", func() bool { return hn.opened(opened) >= 2*3 })
	refill := func() {
		hn.log.add(event{kind: "mark", path: "refill"})
		n, err := svcPay.Standby().Fill(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		standbyFundings += n
		hn.log.add(event{kind: "mark", path: "refilled"})
	}
	if standby {
		refill()
	}
	addr := l.Address() + ":80"
	for i := range intros {
		if standby && i > 0 && i%per == 0 {
			refill()
		}
		before := hn.opened(opened)
		mark := len(hn.log.events())
		hn.log.add(event{kind: "mark", path: fmt.Sprintf("introduction %d", i)})
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		c, err := cli.Dial(dctx, "tcp", addr)
		dcancel()
		if err != nil {
			t.Fatalf("introduction %d: %v", i, err)
		}
		size := 16
		if i == 0 {
			size = 256 << 10 // beyond the relays' free allowance: every hop must be paid
		}
		fmt.Fprintf(c, "%d\n", size)
		if n, err := io.Copy(io.Discard, c); err != nil || n != int64(size) {
			t.Fatalf("introduction %d: got %d bytes of %d: %v", i, n, size, err)
		}
		c.Close()
		waitFor(t, "the rendezvous circuit's channels", func() bool {
			return hn.opened(opened) >= before+paidHops || standby && swapsSince(hn.log, mark) > 0
		})
		if standby && swapsSince(hn.log, mark) > 0 {
			t.Fatalf("the service's wallet sent a swap to the mint after introduction %d", i)
		}
		hn.log.add(event{kind: "mark", path: fmt.Sprintf("introduction %d done", i)})
		cli.Forget(l.Address())
	}

	inWindow, inRefill := false, false
	for _, e := range hn.log.events() {
		switch {
		case e.kind == "mark":
			switch e.path {
			case "refill", "refilled":
				inRefill = e.path == "refill"
			default:
				inWindow = !inWindow
			}
		case e.kind != "sent":
		case e.path == "/v1/swap" && inRefill && e.op.Class != pay.MintFund:
			t.Errorf("a refill swap of class %s", e.op.Class)
		case e.path == "/v1/swap" && inWindow:
			inWindows++
			if standby {
				t.Errorf("a swap of class %s follows an introduction", e.op.Class)
			}
		}
	}
	return inWindows, standbyFundings
}

// swapsSince counts the swaps sent to the mint after the first n events.
func swapsSince(l *eventLog, n int) int {
	k := 0
	for _, e := range l.events()[n:] {
		if e.kind == "sent" && e.path == "/v1/swap" {
			k++
		}
	}
	return k
}

// Written as a client working with the mint would try it: a client that
// introduces itself to a service again and again looks for swaps at the
// mint that follow its introductions. A service whose rendezvous circuits
// draw on channels funded in advance makes none in 50 introductions:
// every mint request it makes falls outside them (its standby refills).
func TestServiceFundsNothingAfterIntroductions(t *testing.T) {
	const intros = 50 // five refills
	found, funded := introductionFundings(t, intros, true)
	if found != 0 {
		t.Errorf("%d swaps followed %d introductions", found, intros)
	}
	if funded < 2*intros {
		t.Errorf("%d standby channels funded for %d rendezvous circuits of two paid hops", funded, intros)
	}
	t.Logf("%d introductions: %d swaps between an introduction and its rendezvous circuit's channels; %d standby channels funded outside them", intros, found, funded)
}

// The same colluders against a service that funds each rendezvous
// circuit's channels after its build, as every circuit is funded: a swap
// follows every introduction. (Ten are enough to show it; 50 find 150.)
func TestServiceFundingAfterIntroductionsWithoutStandby(t *testing.T) {
	const intros = 10
	found, _ := introductionFundings(t, intros, false)
	if found < intros {
		t.Errorf("%d swaps followed %d introductions; a service funding on demand makes one per paid hop", found, intros)
	}
	t.Logf("%d introductions: %d swaps between an introduction and its rendezvous circuit's channels", intros, found)
}
