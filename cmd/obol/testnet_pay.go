package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/obolnet/obol/internal/localnet"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment/mint"
)

// The testnet's economy: what relays charge and what the proxy's wallet
// is given. Prices in msat.
const (
	testnetPerMiB     = 1000 // 1 sat per MiB
	testnetPerCircuit = 1000 // 1 sat per circuit
	testnetFunds      = 100_000
)

// testnetPayment is what every testnet relay charges; channels of ended
// circuits are closed within seconds so that settlement can be watched.
func testnetPayment(mintURL string) *pay.RelayPayment {
	// The relays reach the loopback mint through circuits of their own,
	// to the exits, as the testnet's proxy does.
	return &pay.RelayPayment{Mint: mintURL, PerMiB: testnetPerMiB, PerCircuit: testnetPerCircuit,
		SettleDelay: time.Second, SettleMaxDelay: 5 * time.Second}
}

// testMint is the testnet's mint on loopback.
type testMint struct {
	srv *mint.TestServer
	url string
	dir string
}

// startTestMint starts a mint with a fresh seed and a fake Lightning
// backend that pays every invoice.
func startTestMint() (*testMint, error) {
	dir, err := os.MkdirTemp("", "obol-testnet-mint-")
	if err != nil {
		return nil, err
	}
	seed := make([]byte, 32)
	rand.Read(seed)
	s, err := mint.Start(mint.Config{Seed: seed, Dir: dir, Name: "obol testnet mint"}, mint.ServerConfig{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &testMint{srv: s, url: s.URL, dir: dir}, nil
}

func (tm *testMint) close() {
	tm.srv.Close()
	os.RemoveAll(tm.dir)
}

// settlement is how the testnet's money ended up once everything stopped.
type settlement struct {
	relays     uint64 // sat the relays hold after settling
	wallet     uint64 // sat back in the proxy's and the service's wallets
	unsettled  int    // channels left open at relays
	clientOpen int    // channels the clients could not settle yet
	locked     uint64 // sat in them: refundable after their expiry
	err        error
}

// settle stops the proxy and the services, then the relays (each closes
// its channels at the mint as it stops), then takes back, into the proxy's
// wallet, what the channels did not spend. The mint stays up throughout.
func (t *testnet) settle(ctx context.Context, net *localnet.Network, svc *services) settlement {
	svc.stop()
	// The relays close the channels of the ended circuits while the
	// network still carries their circuits to the mint; a relay that
	// stops settles what is left through the relays that stop with it.
	waitSettled(ctx, net)
	net.Close()
	var s settlement
	for _, r := range net.Relays {
		s.relays += r.Balance()
		if p := r.Payments(); p != nil {
			ch := p.Payments().Channels
			s.unsettled += ch[node.ChannelOpen] + ch[node.ChannelClosing]
		}
	}
	for _, dir := range []string{svc.walletDir(), svc.serviceWalletDir()} {
		pay, err := pay.OpenPayer(ctx, pay.PayerConfig{Wallet: pay.WalletConfig{Dir: dir, DirectMintConnectionUnsafe: true}})
		if err != nil {
			s.err = err
			return s
		}
		rep, err := pay.Settle(ctx)
		s.wallet += pay.Balance()
		s.clientOpen += rep.Open
		s.locked += rep.Locked
		if err := errors.Join(err, pay.Close()); err != nil {
			s.err = err
			return s
		}
	}
	return s
}

// waitSettled waits until no relay has a channel open or closing, or ctx
// ends.
func waitSettled(ctx context.Context, net *localnet.Network) {
	for {
		open := 0
		for _, r := range net.Relays {
			if p := r.Payments(); p != nil {
				ch := p.Payments().Channels
				open += ch[node.ChannelOpen] + ch[node.ChannelClosing]
			}
		}
		if open == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// given is what the testnet gave the proxy's and the service's wallets.
const given = 2 * testnetFunds

// print tells what the run cost.
func (s settlement) print(t *testnet) {
	if s.err != nil {
		fmt.Fprintf(t.e.stderr, "obol testnet: settlement: %v\n", s.err)
		return
	}
	fmt.Fprintf(t.e.stdout, "settled: the relays earned %d sat; the proxy's and the service's wallets hold %d of the %d sat they were given\n",
		s.relays, s.wallet, uint64(given))
	if s.clientOpen > 0 {
		fmt.Fprintf(t.e.stdout, "  %d sat are in %d channels whose opening never reached a relay: refundable after their expiry\n",
			s.locked, s.clientOpen)
	}
}

// check is the settlement's line of `obol testnet --check`: every relay
// settled every channel, and not one sat is lost (the testnet mint
// charges no fees): what the relays earned and the wallet holds, plus the
// funding of channels a relay never saw opened (a circuit that closed as
// it opened them), refundable after expiry, is what the wallet was given.
func (s settlement) check() check {
	name := "payment channels settled; the relays earned what the clients spent"
	if s.err != nil {
		return check{name, false, s.err.Error()}
	}
	detail := fmt.Sprintf("relays %d + wallets %d + refundable %d = %d of %d sat; %d channels open at relays",
		s.relays, s.wallet, s.locked, s.relays+s.wallet+s.locked, uint64(given), s.unsettled)
	ok := s.relays > 0 && s.relays+s.wallet+s.locked == given && s.unsettled == 0
	return check{name, ok, detail}
}

// walletDir is the proxy's wallet; serviceWalletDir the hidden
// service's (a wallet serves one process at a time).
func (s *services) walletDir() string        { return filepath.Join(s.dir, "wallet") }
func (s *services) serviceWalletDir() string { return filepath.Join(s.dir, "serve-wallet") }
