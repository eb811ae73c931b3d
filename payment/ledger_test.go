package payment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

func newTestLedger(t *testing.T, cp *channelPair) (*Ledger, *testClock) {
	t.Helper()
	clock := &testClock{now: time.Unix(int64(cp.params.SetupTime), 0)}
	l, err := NewLedger(LedgerConfig{
		ReceiverKey: cp.recvKey,
		Keyset: func(mint, unit, id string) (Keyset, error) {
			if mint != cp.params.Mint || unit != "sat" || id != cp.mint.ks.ID {
				return Keyset{}, errors.New("not accepted")
			}
			return cp.mint.ks, nil
		},
		Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

func TestLedgerStateMachine(t *testing.T) {
	cp := newChannelPair(t, 1000, 100, 0)
	l, clock := newTestLedger(t, cp)
	signer, _ := cp.sender.SenderSigner(cp.senderKey)
	open, _ := NewChannelOpen(cp.sender, signer)
	id, err := l.Open(open)
	if err != nil || id != cp.sender.ID() {
		t.Fatalf("open: %v", err)
	}
	if _, err := l.Open(open); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second open: %v", err)
	}
	update := func(b uint64) (uint64, error) {
		sig, err := signer.SignBalance(min(b, 1000))
		if err != nil {
			sig = [64]byte{}
		}
		return l.Update(&BalanceUpdate{Channel: id, Balance: b, Sig: sig})
	}
	steps := []struct {
		balance uint64
		credit  uint64
		err     error
	}{
		{0, 0, ErrReplay},
		{10, 10, nil},
		{10, 0, ErrReplay},
		{5, 0, ErrDecreasing},
		{25, 15, nil},
		{1001, 0, ErrOverCapacity},
		{1000, 975, nil},
	}
	for _, s := range steps {
		credit, err := update(s.balance)
		if !errors.Is(err, s.err) || credit != s.credit {
			t.Fatalf("balance %d: credit %d, err %v; want %d, %v", s.balance, credit, err, s.credit, s.err)
		}
	}
	// A signature for another balance.
	sig, _ := signer.SignBalance(500)
	l2, clock2 := newTestLedger(t, cp)
	l2.Open(open)
	if _, err := l2.Update(&BalanceUpdate{Channel: id, Balance: 600, Sig: sig}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong signature: %v", err)
	}
	if _, err := l2.Update(&BalanceUpdate{Channel: ChannelID{1}, Balance: 600, Sig: sig}); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("unknown channel: %v", err)
	}
	// Near expiry, updates stop; a closed channel cannot be reopened.
	clock2.Set(time.Unix(int64(cp.params.ExpiryTime)-60, 0))
	if _, err := l2.Update(&BalanceUpdate{Channel: id, Balance: 500, Sig: sig}); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("update near expiry: %v", err)
	}
	bal, _, err := l.MarkClosed(id)
	if err != nil || bal != 1000 {
		t.Fatalf("close: %d %v", bal, err)
	}
	clock.Set(time.Unix(int64(cp.params.SetupTime), 0))
	if _, err := l.Open(open); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("reopen closed: %v", err)
	}
	clock.Set(time.Unix(int64(cp.params.ExpiryTime), 0))
	if gone := l.Prune(); len(gone) != 1 {
		t.Fatalf("pruned %d", len(gone))
	}
}

func TestLedgerRejectsOpens(t *testing.T) {
	cp := newChannelPair(t, 1000, 100, 0)
	signer, _ := cp.sender.SenderSigner(cp.senderKey)
	good, _ := NewChannelOpen(cp.sender, signer)
	tests := []struct {
		name   string
		mutate func(m *ChannelOpen)
		code   ErrorCode
	}{
		{"bad DLEQ", func(m *ChannelOpen) { m.Funding[0].E[5] ^= 1 }, CodeFunding},
		{"swapped C", func(m *ChannelOpen) { m.Funding[0].C, m.Funding[1].C = m.Funding[1].C, m.Funding[0].C }, CodeFunding},
		{"missing proof", func(m *ChannelOpen) { m.Funding = m.Funding[1:] }, CodeFunding},
		{"zero signature", func(m *ChannelOpen) { m.ZeroSig[0] ^= 1 }, CodeBadSignature},
		{"other receiver", func(m *ChannelOpen) { m.Params.Receiver = cp.senderKey.PubKey() }, CodeParams},
		{"expiry changed", func(m *ChannelOpen) { m.Params.ExpiryTime++ }, CodeFunding},
		{"expiry too soon", func(m *ChannelOpen) { m.Params.ExpiryTime = m.Params.SetupTime + 60 }, CodeParams},
		{"unknown keyset", func(m *ChannelOpen) { m.Params.KeysetID = "00ad268c4d1f5827" }, CodeParams},
		{"capacity above funding", func(m *ChannelOpen) { m.Params.Capacity = m.Params.FundingAmount }, CodeParams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestLedger(t, cp)
			m := *good
			m.Funding = append([]FundingProof(nil), good.Funding...)
			tc.mutate(&m)
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			reply, _, err := l.Handle(b)
			if err == nil {
				t.Fatal("accepted")
			}
			var e ErrorReply
			if uerr := e.UnmarshalBinary(reply); uerr != nil || e.Code != tc.code {
				t.Fatalf("reply code %d (%v), want %d; err %v", e.Code, uerr, tc.code, err)
			}
		})
	}
}

func TestLedgerHandle(t *testing.T) {
	cp := newChannelPair(t, 1000, 0, 0)
	l, _ := newTestLedger(t, cp)
	signer, _ := cp.sender.SenderSigner(cp.senderKey)
	open, _ := NewChannelOpen(cp.sender, signer)
	b, _ := open.MarshalBinary()
	reply, _, err := l.Handle(b)
	var ack Ack
	if err != nil || ack.UnmarshalBinary(reply) != nil || ack.Channel != cp.sender.ID() {
		t.Fatalf("open: %v", err)
	}
	sig, _ := signer.SignBalance(7)
	b, _ = (&BalanceUpdate{Channel: ack.Channel, Balance: 7, Sig: sig}).MarshalBinary()
	reply, credit, err := l.Handle(b)
	if err != nil || credit != 7 || ack.UnmarshalBinary(reply) != nil || ack.Balance != 7 {
		t.Fatalf("update: credit %d, %v", credit, err)
	}
	reply, _, err = l.Handle(b) // replayed
	var e ErrorReply
	if err == nil || e.UnmarshalBinary(reply) != nil || e.Code != CodeReplay || e.Balance != 7 {
		t.Fatalf("replay: %v, reply %+v", err, e)
	}
	reply, _, _ = l.Handle([]byte{1})
	if e.UnmarshalBinary(reply) != nil || e.Code != CodeMalformed {
		t.Fatalf("garbage: %+v", e)
	}
}

// Concurrent updates on one channel: the balance only ever grows and the
// credits add up to it.
func TestLedgerConcurrentUpdates(t *testing.T) {
	cp := newChannelPair(t, 1000, 0, 0)
	l, _ := newTestLedger(t, cp)
	signer, _ := cp.sender.SenderSigner(cp.senderKey)
	open, _ := NewChannelOpen(cp.sender, signer)
	id, err := l.Open(open)
	if err != nil {
		t.Fatal(err)
	}
	sigs := make([][64]byte, 41)
	for b := range sigs {
		sigs[b], _ = signer.SignBalance(uint64(b) * 10)
	}
	var mu sync.Mutex
	var total uint64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 1; b < len(sigs); b++ {
				c, err := l.Update(&BalanceUpdate{Channel: id, Balance: uint64(b) * 10, Sig: sigs[b]})
				if err != nil && !errors.Is(err, ErrReplay) && !errors.Is(err, ErrDecreasing) {
					panic(fmt.Sprint(err))
				}
				mu.Lock()
				total += c
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	bal, _, _ := l.Balance(id)
	if bal != 400 || total != 400 {
		t.Fatalf("balance %d, credited %d", bal, total)
	}
}

func timeOf(unix uint64) time.Time { return time.Unix(int64(unix), 0) }

// A relay that restarts keeps every acknowledged balance and signature.
func TestLedgerStoreRestore(t *testing.T) {
	cp := newChannelPair(t, 1000, 0, 0)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	store, recs, err := OpenFileStore(path)
	if err != nil || len(recs) != 0 {
		t.Fatal(err)
	}
	clock := &testClock{now: timeOf(cp.params.SetupTime)}
	cfg := LedgerConfig{
		ReceiverKey: cp.recvKey, Now: clock.Now, Store: store,
		Keyset: func(string, string, string) (Keyset, error) { return cp.mint.ks, nil },
	}
	l, _ := NewLedger(cfg)
	p, _ := NewChannelPayer(cp.sender, cp.senderKey)
	open, _ := p.Open()
	if _, _, err := l.Handle(open); err != nil {
		t.Fatal(err)
	}
	msg, _ := p.PayMsat(42_000)
	if _, _, err := l.Handle(msg); err != nil {
		t.Fatal(err)
	}
	_, wantSig, _ := l.Balance(cp.sender.ID())
	store.Close()
	// A torn record at the end is dropped.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"channel":[1,2`)
	f.Close()

	store2, recs, err := OpenFileStore(path)
	if err != nil || len(recs) != 2 {
		t.Fatalf("reopen: %v, %d records", err, len(recs))
	}
	defer store2.Close()
	cfg.Store = store2
	l2, _ := NewLedger(cfg)
	if err := l2.Restore(recs); err != nil {
		t.Fatal(err)
	}
	bal, sig, ok := l2.Balance(cp.sender.ID())
	if !ok || bal != 42 || sig != wantSig {
		t.Fatalf("restored balance %d (%v)", bal, ok)
	}
	// The restored ledger refuses the replay and takes the next update.
	if _, err := l2.Update(&BalanceUpdate{Channel: cp.sender.ID(), Balance: 42, Sig: sig}); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay after restore: %v", err)
	}
	msg, _ = p.PayMsat(1000)
	if _, credit, err := l2.Handle(msg); err != nil || credit != 1 {
		t.Fatalf("update after restore: %d, %v", credit, err)
	}
	if _, _, err := l2.MarkClosed(cp.sender.ID()); err != nil {
		t.Fatal(err)
	}
	store2.Close() // as a restart would: one process has the file open at a time
	store3, recs, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	store3.Close()
	l3, _ := NewLedger(LedgerConfig{ReceiverKey: cp.recvKey, Now: clock.Now, Keyset: cfg.Keyset})
	l3.Restore(recs)
	if _, err := l3.Open(mustDecodeOpen(t, open)); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("reopen of a closed channel after restart: %v", err)
	}
	// Past the expiry, the channel is not restored.
	clock.Set(timeOf(cp.params.ExpiryTime))
	l4, _ := NewLedger(LedgerConfig{ReceiverKey: cp.recvKey, Now: clock.Now, Keyset: cfg.Keyset})
	if err := l4.Restore(recs); err != nil {
		t.Fatal(err)
	}
	if _, ok := l4.Channel(cp.sender.ID()); ok {
		t.Fatal("expired channel restored")
	}
}

func mustDecodeOpen(t *testing.T, b []byte) *ChannelOpen {
	t.Helper()
	var m ChannelOpen
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return &m
}
