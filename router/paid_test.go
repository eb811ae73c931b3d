package router_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/mint"
	"github.com/obolnet/obol/router"
)

type fakeControl struct {
	resumed   chan struct{}
	destroyed chan circuit.DestroyReason
	replies   chan circuit.RelayCell
}

func newFakeControl() *fakeControl {
	return &fakeControl{resumed: make(chan struct{}, 16), destroyed: make(chan circuit.DestroyReason, 1),
		replies: make(chan circuit.RelayCell, 64)}
}

func (f *fakeControl) Reply(rc circuit.RelayCell) { f.replies <- rc }

func (f *fakeControl) Resume()                           { f.resumed <- struct{}{} }
func (f *fakeControl) Destroy(why circuit.DestroyReason) { f.destroyed <- why }

// meterFixture is a relay's ledger and a client's funded channel to it,
// minted at an in-process test mint.
type meterFixture struct {
	ledger *payment.Ledger
	payer  *payment.ChannelPayer
	ch     *payment.Channel
	sender *btcec.PrivateKey
	relay  *btcec.PrivateKey
	m      *mint.Mint
	ks     payment.Keyset
}

func newMeterFixture(t testing.TB, capacity uint64) *meterFixture {
	m, err := mint.Open(mint.Config{Seed: []byte("router meter test mint seed")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ks, _ := m.ActiveKeyset("sat")
	relay, _ := btcec.NewPrivateKey()
	f := &meterFixture{relay: relay, m: m, ks: ks}
	f.ledger, err = payment.NewLedger(payment.LedgerConfig{ReceiverKey: relay,
		Keyset: func(string, string, string) (payment.Keyset, error) { return ks, nil }})
	if err != nil {
		t.Fatal(err)
	}
	f.ch, f.sender, f.payer = f.fund(t, capacity, 1)
	return f
}

func (f *meterFixture) fund(t testing.TB, capacity, counter uint64) (*payment.Channel, *btcec.PrivateKey, *payment.ChannelPayer) {
	sender, _ := payment.ChannelKey([]byte("router meter test client seed"), counter)
	now := time.Now()
	funding, err := payment.FundingAmountFor(capacity, f.ks, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := payment.NewChannel(payment.ChannelParams{
		Mint: "http://mint.test", Unit: "sat", Capacity: capacity, FundingAmount: funding,
		KeysetID: f.ks.ID, SetupTime: uint64(now.Unix()), ExpiryTime: uint64(now.Add(24 * time.Hour).Unix()),
		Sender: sender.PubKey(), Receiver: f.relay.PubKey(),
	}, f.ks, payment.ChannelSecret(sender, f.relay.PubKey()))
	if err != nil {
		t.Fatal(err)
	}
	var outs []payment.BlindedMessage
	for _, o := range ch.FundingOutputs() {
		outs = append(outs, o.BlindedMessage(f.ks.ID))
	}
	q, _ := f.m.CreateMintQuote(funding, "sat")
	sigs, err := f.m.MintTokens(q.Quote, outs)
	if err != nil {
		t.Fatal(err)
	}
	proofs, err := ch.UnblindFunding(sigs)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.AttachFunding(proofs); err != nil {
		t.Fatal(err)
	}
	p, err := payment.NewChannelPayer(ch, sender)
	if err != nil {
		t.Fatal(err)
	}
	return ch, sender, p
}

// deliver sends msg to the meter in fragments and returns the decoded
// reply.
func deliver(t testing.TB, cm router.CircuitMeter, ctl *fakeControl, cmd circuit.RelayCommand, msg []byte) payment.Message {
	t.Helper()
	frags, err := payment.Fragment(msg, circuit.MaxRelayBody)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frags {
		if r, err := cm.Deliver(circuit.RelayCell{Command: cmd, Body: f}); err != nil || r != nil {
			t.Fatalf("deliver: %v, %v", r, err)
		}
	}
	var reply circuit.RelayCell
	select {
	case reply = <-ctl.replies:
	case why := <-ctl.destroyed:
		t.Fatalf("destroyed: %v", why)
	}
	if reply.Command != circuit.RelayPayAck {
		t.Fatalf("reply command %v", reply.Command)
	}
	var asm payment.Reassembler
	b, err := asm.Add(reply.Body)
	if err != nil || b == nil {
		t.Fatalf("reply: %v", err)
	}
	m, err := payment.DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustPay(t testing.TB, p *payment.ChannelPayer, msat uint64) []byte {
	t.Helper()
	b, err := p.PayMsat(msat)
	if err != nil || b == nil {
		t.Fatalf("pay %d msat: %v", msat, err)
	}
	return b
}

// A circuit runs on its allowance, pauses when it owes more than it paid,
// resumes when paid, and is destroyed after the grace period unpaid.
//
// It runs in virtual time: the grace period passes only once every
// goroutine waits, so a slow machine cannot let it expire before the
// payment is delivered.
func TestPaidMeterPauseResumeGrace(t *testing.T) {
	synctest.Test(t, testPaidMeterPauseResumeGrace)
}

func testPaidMeterPauseResumeGrace(t *testing.T) {
	f := newMeterFixture(t, 1000)
	meter, err := router.NewPaidMeter(router.PaidConfig{Ledger: f.ledger, PerMiB: 1 << 20, PerCircuit: 500,
		FreeBytes: 10 * circuit.CellSize, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctl := newFakeControl()
	cm := meter.Open(ctl)
	for i := range 10 {
		if !cm.Cells(1) {
			t.Fatalf("cell %d of the allowance refused", i)
		}
	}
	if cm.Cells(1) {
		t.Fatal("cell past the allowance accepted unpaid")
	}
	open, _ := f.payer.Open()
	if _, ok := deliver(t, cm, ctl, circuit.RelayPayChannelOpen, open).(*payment.Ack); !ok {
		t.Fatal("open refused")
	}
	owed := meter.Owed(11 * circuit.CellSize) // 500 + 11 × 1280 msat
	if owed != 14580 {
		t.Fatalf("owed %d msat", owed)
	}
	if ack, ok := deliver(t, cm, ctl, circuit.RelayPayBalanceUpdate, mustPay(t, f.payer, owed)).(*payment.Ack); !ok || ack.Balance != 15 {
		t.Fatalf("update: %#v", ack)
	}
	<-ctl.resumed
	if !cm.Cells(0) {
		t.Fatal("paid circuit refused")
	}
	// 14580 msat owed, 15000 paid: 420 msat of credit, then nothing.
	if cm.Cells(1) {
		t.Fatal("cell past the credit accepted")
	}
	select {
	case why := <-ctl.destroyed:
		if why != circuit.DestroyPayment {
			t.Fatalf("destroyed with %v", why)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("unpaid circuit not destroyed after the grace period")
	}
	cm.Close()
	if ended := meter.Ended(); len(ended) != 1 || ended[0] != f.ch.ID() {
		t.Fatalf("ended channels %v", ended)
	}
}

// Replayed, decreasing, foreign and forged updates are refused with the
// right codes and credit nothing; garbage fragments are errors.
func TestPaidMeterRefusals(t *testing.T) {
	f := newMeterFixture(t, 1000)
	meter, _ := router.NewPaidMeter(router.PaidConfig{Ledger: f.ledger, PerMiB: 1 << 20})
	ctl := newFakeControl()
	cm := meter.Open(ctl)
	open, _ := f.payer.Open()
	deliver(t, cm, ctl, circuit.RelayPayChannelOpen, open)
	first := mustPay(t, f.payer, 5000)
	second := mustPay(t, f.payer, 5000)
	deliver(t, cm, ctl, circuit.RelayPayBalanceUpdate, second)

	// A channel opened on another circuit does not pay for this one.
	_, _, payer2 := f.fund(t, 100, 2)
	octl := newFakeControl()
	other := meter.Open(octl)
	open2, _ := payer2.Open()
	deliver(t, other, octl, circuit.RelayPayChannelOpen, open2)
	foreign := mustPay(t, payer2, 1000)

	var forged payment.BalanceUpdate
	forged.UnmarshalBinary(mustPay(t, f.payer, 1000))
	forged.Balance++
	forgedB, _ := forged.MarshalBinary()

	for _, c := range []struct {
		name string
		msg  []byte
		code payment.ErrorCode
	}{
		{"replay", second, payment.CodeReplay},
		{"decreasing", first, payment.CodeDecreasing},
		{"foreign channel", foreign, payment.CodeUnknownChannel},
		{"forged signature", forgedB, payment.CodeBadSignature},
	} {
		e, ok := deliver(t, cm, ctl, circuit.RelayPayBalanceUpdate, c.msg).(*payment.ErrorReply)
		if !ok || e.Code != c.code {
			t.Errorf("%s: reply %#v", c.name, e)
		}
	}
	if bal, _, _ := f.ledger.Balance(f.ch.ID()); bal != 10 {
		t.Fatalf("balance %d after refusals", bal)
	}
	for _, body := range [][]byte{{}, {0, 0, 0, 0}, {0xff, 0xff, 0, 0, 1}, {0, 5, 0, 3, 1}} {
		if _, err := cm.Deliver(circuit.RelayCell{Command: circuit.RelayPayBalanceUpdate, Body: body}); !errors.Is(err, payment.ErrMalformed) {
			t.Errorf("fragment %x: %v", body, err)
		}
	}
	if _, err := cm.Deliver(circuit.RelayCell{Command: circuit.RelayPayAck, Body: []byte{0, 1, 0, 0, 1}}); err == nil {
		t.Error("an ACK from the client accepted")
	}
}

// FuzzPaidMeterDeliver feeds arbitrary payment cells to a circuit meter:
// no panic, and any reply is one ACK or ERROR in one fragment.
func FuzzPaidMeterDeliver(f *testing.F) {
	fx := newMeterFixture(f, 16)
	open, _ := fx.payer.Open()
	frags, _ := payment.Fragment(open, circuit.MaxRelayBody)
	upd, _ := payment.Fragment(mustPay(f, fx.payer, 3000), circuit.MaxRelayBody) // 3 of 16 sat
	f.Add(byte(0x40), frags[0])
	f.Add(byte(0x41), upd[0])
	f.Add(byte(0x41), []byte{0, 2, 0, 0, 1, 2})
	meter, _ := router.NewPaidMeter(router.PaidConfig{Ledger: fx.ledger, PerMiB: 1})
	f.Fuzz(func(t *testing.T, cmd byte, body []byte) {
		ctl := newFakeControl()
		cm := meter.Open(ctl)
		r, err := cm.Deliver(circuit.RelayCell{Command: circuit.RelayCommand(cmd), Body: body})
		if r != nil {
			t.Fatal("synchronous reply")
		}
		if err != nil {
			cm.Close()
			return
		}
		if len(body) < 4 || int(body[0])<<8|int(body[1]) != len(body)-4 || body[2]|body[3] != 0 {
			cm.Close() // the first fragment of a longer message: no reply yet
			return
		}
		var rc circuit.RelayCell
		select {
		case rc = <-ctl.replies:
		case <-ctl.destroyed:
			cm.Close()
			return
		}
		cm.Close()
		var asm payment.Reassembler
		b, err := asm.Add(rc.Body)
		if err != nil || b == nil {
			t.Fatalf("reply not one fragment: %v", err)
		}
		switch m, _ := payment.DecodeMessage(b); m.(type) {
		case *payment.Ack, *payment.ErrorReply:
		default:
			t.Fatalf("reply %T", m)
		}
	})
}
