package payment

import (
	"crypto/sha256"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

// Benchmarks of what a relay does per payment and per channel, and what a
// client does per payment. Run: go test ./payment -run '^$' -bench .

func benchPair(b *testing.B, capacity uint64) (*channelPair, *Signer) {
	b.Helper()
	cp := newChannelPair(b, capacity, 100, 0)
	s, err := cp.sender.SenderSigner(cp.senderKey)
	if err != nil {
		b.Fatal(err)
	}
	return cp, s
}

// BenchmarkVerifyBalance: the relay's check of one BALANCE_UPDATE.
func BenchmarkVerifyBalance(b *testing.B) {
	cp, s := benchPair(b, 100_000)
	sig, _ := s.SignBalance(54_321)
	b.ReportAllocs()
	for b.Loop() {
		if err := cp.receiver.VerifyBalance(54_321, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLedgerHandleUpdate: decode, check and record one update, and
// encode the ACK.
func BenchmarkLedgerHandleUpdate(b *testing.B) {
	cp, s := benchPair(b, 100_000)
	clock := &testClock{}
	clock.Set(timeOf(cp.params.SetupTime))
	l, err := NewLedger(LedgerConfig{ReceiverKey: cp.recvKey, Now: clock.Now,
		Keyset: func(string, string, string) (Keyset, error) { return cp.mint.ks, nil }})
	if err != nil {
		b.Fatal(err)
	}
	open, _ := NewChannelOpen(cp.sender, s)
	id, err := l.Open(open)
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([][]byte, 256)
	for i := range msgs {
		sig, _ := s.SignBalance(uint64(i+1) * 10)
		msgs[i], _ = (&BalanceUpdate{Channel: id, Balance: uint64(i+1) * 10, Sig: sig}).MarshalBinary()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(msgs) {
			l.mu.Lock()
			l.channels[id].balance = 0
			l.mu.Unlock()
			i = 0
		}
		if _, _, err := l.Handle(msgs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkOpenChannel: the relay's verification of a CHANNEL_OPEN
// (derive and cache every output, check each funding proof's DLEQ, the
// zero-balance signature), for channels of 1 000 and 100 000 sat.
func BenchmarkOpenChannel(b *testing.B) {
	for _, c := range []struct {
		name     string
		capacity uint64
	}{{"1k", 1000}, {"100k", 100_000}} {
		b.Run(c.name, func(b *testing.B) {
			cp, s := benchPair(b, c.capacity)
			open, _ := NewChannelOpen(cp.sender, s)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := OpenChannel(open, cp.recvKey, cp.mint.ks); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignBalance: the client's signing of one update.
func BenchmarkSignBalance(b *testing.B) {
	_, s := benchPair(b, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.SignBalance(54_321); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBalanceUpdate: the wire decoding alone.
func BenchmarkDecodeBalanceUpdate(b *testing.B) {
	m, _ := (&BalanceUpdate{Balance: 7}).MarshalBinary()
	b.ReportAllocs()
	for b.Loop() {
		var u BalanceUpdate
		if err := u.UnmarshalBinary(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSchnorrVerifyBaseline: one BIP-340 verification with btcec, the
// floor under BenchmarkVerifyBalance.
func BenchmarkSchnorrVerifyBaseline(b *testing.B) {
	k := testKey(b, "baseline")
	h := sha256.Sum256([]byte("m"))
	sig, _ := schnorr.Sign(k, h[:])
	pub := k.PubKey()
	for b.Loop() {
		if !sig.Verify(h[:], pub) {
			b.Fatal("verify")
		}
	}
}
