package pay_test

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// Clients and relays are killed at random points — in a mint call (before
// or after the mint executed it), mid-transfer, mid-settlement — and
// restarted from their files. After every restart nothing is pending; at
// the end, past every expiry, each channel is settled (closed and
// reclaimed, or refunded) and not one sat is lost: what was minted is in
// the wallets or was the mint's fees.
func TestCrashSafety(t *testing.T) {
	runs := 24
	if testing.Short() {
		runs = 8
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var offset atomic.Int64 // seconds the shared clock is ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load()) * time.Second) }
	port, _ := dataServer(t)
	tn := newTestNet(t, 3, netOpts{clock: clock, feePPK: 100})
	var clients []*testClient
	const topUp = 400
	for run := range runs {
		c := tn.newClient(t, t.TempDir(), topUp)
		clients = append(clients, c)
		hops := rng.Perm(3)[:1+rng.IntN(3)]
		scenario := run % 4
		if scenario == 0 { // the client dies in one of its funding swaps
			c.crash.arm(1+rng.IntN(len(hops)), rng.IntN(2) == 0)
		}
		pc := tn.build(t, c, 30_000, hops...) // 16-sat channels
		transfer := make(chan error, 1)
		size := 1<<20 + rng.IntN(2<<20)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := pc.Dial(ctx, "127.0.0.1", port)
			if err == nil {
				_, err = get(s, size, nil)
				s.Close()
			}
			transfer <- err
		}()
		switch scenario {
		case 0:
			<-c.crash.crashed
			tn.crashClient(t, c, pc)
			<-transfer
		case 1: // the client dies mid-transfer
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			tn.crashClient(t, c, pc)
			<-transfer
		case 2: // a relay dies mid-transfer
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			tn.restartRelay(t, tn.relays[hops[rng.IntN(len(hops))]])
			<-transfer
			pc.Close()
			pc.stopPaying()
		case 3: // a relay dies in its close at the mint
			<-transfer
			r := tn.relays[hops[rng.IntN(len(hops))]]
			r.crash.arm(1, rng.IntN(2) == 0)
			pc.Close()
			pc.stopPaying()
			select {
			case <-r.crash.crashed:
			case <-time.After(30 * time.Second):
				t.Fatal("relay did not settle")
			}
			tn.restartRelay(t, r)
		}
		// A payment cancelled in a funding swap leaves it pending too, crash
		// or not: Settle recovers it first. A funding still at the mint
		// when its circuit ended runs to the mint's answer meanwhile:
		// settle again until every operation has ended.
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := c.paid.Settle(context.Background())
			n := c.wallet.Pending()
			if err == nil && n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d: %d wallet operations pending after restart (settle: %v)", run, n, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Let the relays settle every ended circuit's channel, then move past
	// every expiry: the relays close the rest, the clients take back
	// everything else.
	offset.Add(8 * 24 * 3600)
	waitFor(t, "relays to settle every channel", func() bool {
		for _, r := range tn.relays {
			for _, c := range r.ledger.Channels() {
				if !c.Settled {
					return false
				}
			}
		}
		return true
	})
	var held uint64
	for i, c := range clients {
		if _, err := c.wallet.Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
		rep, err := c.paid.Settle(context.Background())
		if err != nil || rep.Open != 0 {
			t.Fatalf("client %d: final settle %+v: %v", i, rep, err)
		}
		held += c.wallet.Balance()
	}
	for _, r := range tn.relays {
		if n := r.wallet.Pending(); n != 0 {
			t.Fatalf("relay wallet: %d operations pending", n)
		}
		held += r.wallet.Balance()
	}
	fees := tn.mint.FeesCollected("sat")
	minted := uint64(runs * topUp)
	t.Logf("%d runs: minted %d sat; wallets hold %d, mint fees %d", runs, minted, held, fees)
	if held+fees != minted {
		t.Fatalf("minted %d != held %d + fees %d: %d sat lost", minted, held, fees, int64(minted)-int64(held+fees))
	}
}

// crashClient kills a client: its payments and circuit stop, its files
// are closed as they are; then it restarts from them and recovers.
func (tn *testNet) crashClient(t *testing.T, c *testClient, pc *paidCircuit) {
	pc.cancel()
	pc.Circuit.Close()
	<-pc.done
	c.close()
	tn.openClient(t, c)
	if _, err := c.wallet.Recover(context.Background()); err != nil {
		t.Fatalf("client recovery: %v", err)
	}
}

// restartRelay kills a relay and starts it again from its files, on a new
// host as a restarted process would be.
func (tn *testNet) restartRelay(t *testing.T, r *paidRelay) {
	if err := tn.net.Restart(r.Index); err != nil {
		t.Fatal(err)
	}
}
