package mint

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
)

// A whole channel against the mint over HTTP: funding by swap, open and
// updates checked by a relay ledger without the mint, close by the relay,
// claims by both parties, and the cheating cases the mint must refuse.
func TestChannelOnMint(t *testing.T) {
	clock := &testClock{now: time.Unix(1_790_000_000, 0)}
	m, c := startMint(t, Config{Now: clock.Now, Units: []UnitConfig{{Unit: "sat", Order: 32, InputFeePPK: 100}}})
	ks, _ := m.ActiveKeyset("sat")
	sender, _ := btcec.NewPrivateKey()
	relay, _ := btcec.NewPrivateKey()

	// The sender funds the channel: plain ecash swapped to the funding outputs.
	const capacity = 500
	funding, err := payment.FundingAmountFor(capacity, ks, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	params := payment.ChannelParams{
		Mint: c.base, Unit: "sat", Capacity: capacity, FundingAmount: funding,
		KeysetID: ks.ID, InputFeePPK: ks.InputFeePPK,
		SetupTime: uint64(clock.now.Unix()), ExpiryTime: uint64(clock.now.Add(24 * time.Hour).Unix()),
		Sender: sender.PubKey(), Receiver: relay.PubKey(),
	}
	ch, err := payment.NewChannel(params, ks, payment.ChannelSecret(sender, relay.PubKey()))
	if err != nil {
		t.Fatal(err)
	}
	outs := ch.FundingOutputs()
	var fees uint64 = 1 // ceil(n·100/1000) for up to 10 inputs
	amounts := []uint64{}
	var total uint64
	for _, o := range outs {
		total += o.Amount
	}
	for _, a := range payment.PowersOfTwo(total + fees) {
		amounts = append(amounts, a)
	}
	plain := mintProofs(t, c, ks, amounts)
	bms := make([]payment.BlindedMessage, len(outs))
	for i, o := range outs {
		bms[i] = o.BlindedMessage(ks.ID)
	}
	var resp sigsResp
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": plain, "outputs": bms}, &resp); err != nil {
		t.Fatalf("funding swap: %v", err)
	}
	proofs, err := ch.UnblindFunding(resp.Signatures)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.AttachFunding(proofs); err != nil {
		t.Fatal(err)
	}

	// The relay opens the channel and takes updates, offline.
	ledger, err := payment.NewLedger(payment.LedgerConfig{
		ReceiverKey: relay, Now: clock.Now,
		Keyset: func(string, string, string) (payment.Keyset, error) { return ks, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ch.SenderSigner(sender)
	open, err := payment.NewChannelOpen(ch, signer)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ledger.Open(open)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []uint64{100, 250, 400} {
		sig, _ := signer.SignBalance(b)
		if _, err := ledger.Update(&payment.BalanceUpdate{Channel: id, Balance: b, Sig: sig}); err != nil {
			t.Fatal(err)
		}
	}
	sig250, _ := signer.SignBalance(250)

	// Settlement.
	bal, sig, err := ledger.MarkClosed(id)
	if err != nil || bal != 400 {
		t.Fatalf("close: %d %v", bal, err)
	}
	rch, _ := ledger.Channel(id)
	rs, err := rch.ReceiverSigner(relay)
	if err != nil {
		t.Fatal(err)
	}
	inputs, outputs, err := rs.CloseSwap(bal, sig)
	if err != nil {
		t.Fatal(err)
	}
	// Outputs of two commitments combined: refused by the mint.
	_, out250, _ := rs.CloseSwap(250, sig250)
	mixed := mixOutputs(outputs, out250)
	if mixed == nil {
		t.Fatal("no two outputs of one amount to mix")
	}
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": inputs, "outputs": mixed}, &resp); code(err) != CodeConditions {
		t.Fatalf("mixed commitment: %v", err)
	}
	// The other commitment's outputs under this commitment's signatures.
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": inputs, "outputs": out250}, &resp); code(err) != CodeConditions {
		t.Fatalf("outputs of another commitment: %v", err)
	}
	// A balance above what was signed: refused.
	over, _, _ := rch.CommitmentSwap(450)
	over[0].Witness = inputs[0].Witness
	_, outOver, _ := rch.CommitmentSwap(450)
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": over, "outputs": outOver}, &resp); code(err) != CodeConditions {
		t.Fatalf("claim above the signed balance: %v", err)
	}
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": inputs, "outputs": outputs}, &resp); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": inputs, "outputs": outputs}, &resp); code(err) != CodeSpent && code(err) != CodeOutputSigned {
		t.Fatalf("second close: %v", err)
	}

	// The relay claims its outputs with its per-output keys; what it gets
	// after the stage-2 fee is at least the balance.
	commit, _ := rch.CommitmentOutputs(bal)
	var mine []payment.Proof
	for i, o := range commit {
		if o.Context != "receiver" {
			continue
		}
		A := ks.Keys[o.Amount]
		Cb, _ := parsePoint(resp.Signatures[i].C)
		C := payment.Unblind(Cb, o.R, A)
		k, err := rch.OutputKey(o, relay)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := payment.SignMessage(k, []byte(o.Secret))
		mine = append(mine, payment.Proof{Amount: o.Amount, ID: ks.ID, Secret: o.Secret,
			C: hex.EncodeToString(C.SerializeCompressed()), Witness: payment.Witness{Signatures: []string{w}}.String()})
	}
	var nominal uint64
	for _, p := range mine {
		nominal += p.Amount
	}
	feeIn := (uint64(len(mine))*ks.InputFeePPK + 999) / 1000
	claim := newOutputs(t, ks, payment.PowersOfTwo(nominal-feeIn), nil)
	var claimed sigsResp
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": mine, "outputs": outputsOf(claim)}, &claimed); err != nil {
		t.Fatalf("relay claim: %v", err)
	}
	if nominal-feeIn < bal {
		t.Fatalf("relay got %d after fees for a balance of %d", nominal-feeIn, bal)
	}

	// The sender restores its outputs (NUT-09) without the relay's help.
	var senderOuts []payment.BlindedMessage
	for _, o := range commit {
		if o.Context == "sender" {
			senderOuts = append(senderOuts, o.BlindedMessage(ks.ID))
		}
	}
	var rr struct {
		Signatures []payment.BlindSignature `json:"signatures"`
	}
	if err := c.call("POST", "/v1/restore", map[string]any{"outputs": senderOuts}, &rr); err != nil || len(rr.Signatures) != len(senderOuts) {
		t.Fatalf("restore: %v, %d of %d", err, len(rr.Signatures), len(senderOuts))
	}
}

// The refund pathway: refused before the expiry, accepted after it.
func TestChannelRefundOnMint(t *testing.T) {
	clock := &testClock{now: time.Unix(1_790_000_000, 0)}
	m, c := startMint(t, Config{Now: clock.Now})
	ks, _ := m.ActiveKeyset("sat")
	sender, _ := btcec.NewPrivateKey()
	relay, _ := btcec.NewPrivateKey()
	params := payment.ChannelParams{
		Mint: c.base, Unit: "sat", Capacity: 100, FundingAmount: 100, KeysetID: ks.ID,
		SetupTime: uint64(clock.now.Unix()), ExpiryTime: uint64(clock.now.Add(time.Hour).Unix()),
		Sender: sender.PubKey(), Receiver: relay.PubKey(),
	}
	ch, err := payment.NewChannel(params, ks, payment.ChannelSecret(sender, relay.PubKey()))
	if err != nil {
		t.Fatal(err)
	}
	plain := mintProofs(t, c, ks, payment.PowersOfTwo(100))
	bms := []payment.BlindedMessage{}
	for _, o := range ch.FundingOutputs() {
		bms = append(bms, o.BlindedMessage(ks.ID))
	}
	var resp sigsResp
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": plain, "outputs": bms}, &resp); err != nil {
		t.Fatal(err)
	}
	proofs, _ := ch.UnblindFunding(resp.Signatures)
	ch.AttachFunding(proofs)
	refund, _ := ch.RefundSigner(sender)
	back := newOutputs(t, ks, payment.PowersOfTwo(100), nil)
	inputs, err := refund.RefundSwap(outputsOf(back))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": inputs, "outputs": outputsOf(back)}, &resp); code(err) != CodeConditions {
		t.Fatalf("refund before expiry: %v", err)
	}
	clock.now = clock.now.Add(time.Hour)
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": inputs, "outputs": outputsOf(back)}, &resp); err != nil {
		t.Fatalf("refund after expiry: %v", err)
	}
}

// mixOutputs replaces one output of a by an output of b of the same amount
// but another B_: a balanced swap that differs from the signed one.
func mixOutputs(a, b []payment.BlindedMessage) []payment.BlindedMessage {
	for i := range a {
		for j := range b {
			if a[i].Amount == b[j].Amount && a[i].B != b[j].B && !hasB(a, b[j].B) {
				mixed := append([]payment.BlindedMessage(nil), a...)
				mixed[i] = b[j]
				return mixed
			}
		}
	}
	return nil
}

func hasB(outs []payment.BlindedMessage, B string) bool {
	for _, o := range outs {
		if o.B == B {
			return true
		}
	}
	return false
}
