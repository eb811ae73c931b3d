package payment_test

import (
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
	"github.com/obolnet/obol/payment/mint"
)

// A client opens a channel to a relay and pays it; the relay checks each
// payment without the mint.
func Example() {
	m, _ := mint.Open(mint.Config{Seed: []byte("example mint seed, not secret")})
	defer m.Close()
	ks, _ := m.ActiveKeyset("sat")

	// The client: a fresh key for this channel, parameters from the
	// relay's descriptor, the funding token minted to the channel's
	// deterministic outputs.
	sender, _ := payment.ChannelKey([]byte("client wallet seed"), 1)
	relayKey, _ := btcec.NewPrivateKey()
	now := time.Now()
	funding, _ := payment.FundingAmountFor(1000, ks, 0, 1<<20)
	ch, _ := payment.NewChannel(payment.ChannelParams{
		Mint: "http://127.0.0.1:3338", Unit: "sat", Capacity: 1000, FundingAmount: funding,
		KeysetID: ks.ID, SetupTime: uint64(now.Unix()), ExpiryTime: uint64(now.Add(24 * time.Hour).Unix()),
		Sender: sender.PubKey(), Receiver: relayKey.PubKey(),
	}, ks, payment.ChannelSecret(sender, relayKey.PubKey()))
	var outs []payment.BlindedMessage
	for _, o := range ch.FundingOutputs() {
		outs = append(outs, o.BlindedMessage(ks.ID))
	}
	q, _ := m.CreateMintQuote(funding, "sat")
	sigs, _ := m.MintTokens(q.Quote, outs)
	proofs, _ := ch.UnblindFunding(sigs)
	ch.AttachFunding(proofs)
	payer, _ := payment.NewChannelPayer(ch, sender)

	// The relay.
	ledger, _ := payment.NewLedger(payment.LedgerConfig{
		ReceiverKey: relayKey,
		Keyset:      func(string, string, string) (payment.Keyset, error) { return ks, nil },
	})

	open, _ := payer.Open()
	reply, _, err := ledger.Handle(open)
	fmt.Println("open:", len(open), "bytes,", err, payer.HandleReply(reply))
	for _, msat := range []uint64{1500, 2500, 400} {
		update, _ := payer.PayMsat(msat)
		reply, credit, err := ledger.Handle(update)
		fmt.Println("update:", len(update), "bytes, credit", credit, "sat,", err, payer.HandleReply(reply))
	}
	fmt.Println("acknowledged:", payer.Acked(), "sat")
	// Output:
	// open: 817 bytes, <nil> <nil>
	// update: 106 bytes, credit 2 sat, <nil> <nil>
	// update: 106 bytes, credit 2 sat, <nil> <nil>
	// update: 106 bytes, credit 1 sat, <nil> <nil>
	// acknowledged: 5 sat
}
