package payment

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
)

// testMint signs outputs with a fixed keyset of powers of two; its keys are
// derived from a label so that runs are reproducible.
type testMint struct {
	ks   Keyset
	priv map[uint64]*btcec.PrivateKey
}

func newTestMint(t testing.TB, unit string, feePPK uint64, maxPow int) *testMint {
	t.Helper()
	m := &testMint{
		ks:   Keyset{ID: "00ad268c4d1f5826", Unit: unit, InputFeePPK: feePPK, Keys: map[uint64]*btcec.PublicKey{}},
		priv: map[uint64]*btcec.PrivateKey{},
	}
	for i := 0; i <= maxPow; i++ {
		a := uint64(1) << i
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("obol test mint key "+unit), a))
		k, err := scalarFromBytes(h)
		if err != nil {
			t.Fatal(err)
		}
		m.priv[a], m.ks.Keys[a] = k, k.PubKey()
	}
	return m
}

func (m *testMint) sign(t testing.TB, outs []*DetOutput) []BlindSignature {
	t.Helper()
	sigs := make([]BlindSignature, len(outs))
	for i, o := range outs {
		k := m.priv[o.Amount]
		C := SignBlinded(o.B, k)
		e, s, err := GenerateDLEQ(k, o.B, C)
		if err != nil {
			t.Fatal(err)
		}
		sigs[i] = BlindSignature{Amount: o.Amount, ID: m.ks.ID, C: pubHexOf(C), DLEQ: &DLEQProof{E: hexBytes(e[:]), S: hexBytes(s[:])}}
	}
	return sigs
}

func testKey(t testing.TB, label string) *btcec.PrivateKey {
	t.Helper()
	k, err := scalarFromBytes(sha256.Sum256([]byte(label)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// channelPair is a funded channel as seen by its sender and its receiver.
type channelPair struct {
	mint               *testMint
	senderKey, recvKey *btcec.PrivateKey
	sender, receiver   *Channel
	params             ChannelParams
}

func newChannelPair(t testing.TB, capacity, feePPK, maxOut uint64) *channelPair {
	t.Helper()
	m := newTestMint(t, "sat", feePPK, 20)
	cp := &channelPair{mint: m, senderKey: testKey(t, "sender"), recvKey: testKey(t, "receiver")}
	funding, err := FundingAmountFor(capacity, m.ks, maxOut, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	cp.params = ChannelParams{
		Mint: "http://127.0.0.1:3338", Unit: "sat", Capacity: capacity, FundingAmount: funding,
		KeysetID: m.ks.ID, InputFeePPK: feePPK, MaxOutputAmount: maxOut,
		SetupTime: 1_790_000_000, ExpiryTime: 1_790_086_400,
		Sender: cp.senderKey.PubKey(), Receiver: cp.recvKey.PubKey(),
	}
	cp.sender, err = NewChannel(cp.params, m.ks, ChannelSecret(cp.senderKey, cp.params.Receiver))
	if err != nil {
		t.Fatal(err)
	}
	proofs, err := cp.sender.UnblindFunding(m.sign(t, cp.sender.FundingOutputs()))
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.sender.AttachFunding(proofs); err != nil {
		t.Fatal(err)
	}
	cp.receiver, err = NewChannel(cp.params, m.ks, ChannelSecret(cp.recvKey, cp.params.Sender))
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.receiver.AttachFunding(proofs); err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestChannelEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		capacity, fee, maxOutput uint64
	}{
		{"no fees", 1000, 0, 0},
		{"fees", 1000, 400, 0},
		{"max output", 300, 100, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := newChannelPair(t, tc.capacity, tc.fee, tc.maxOutput)
			if cp.sender.ID() != cp.receiver.ID() {
				t.Fatal("channel ids differ")
			}
			signer, err := cp.sender.SenderSigner(cp.senderKey)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range []uint64{0, 1, 6, 7, tc.capacity / 2, tc.capacity} {
				sig, err := signer.SignBalance(b)
				if err != nil {
					t.Fatalf("sign %d: %v", b, err)
				}
				if err := cp.receiver.VerifyBalance(b, sig); err != nil {
					t.Fatalf("verify %d: %v", b, err)
				}
				// Balances with the same split share one commitment (fees can
				// make two balances need the same outputs).
				s1, _ := cp.receiver.Split(b)
				s0, _ := cp.receiver.Split(b - 1)
				if b > 0 && s0 != s1 && cp.receiver.VerifyBalance(b-1, sig) == nil {
					t.Fatalf("signature for %d verifies for %d", b, b-1)
				}
				checkSplit(t, cp.receiver, b)
			}
			if _, err := signer.SignBalance(tc.capacity + 1); err == nil {
				t.Fatal("signed over capacity")
			}
		})
	}
}

// checkSplit checks the value accounting of a commitment: the outputs add
// up to the funding after stage-1 fees, and the receiver's outputs are
// worth at least the balance after stage-2 fees.
func checkSplit(t *testing.T, ch *Channel, balance uint64) {
	t.Helper()
	outs, err := ch.CommitmentOutputs(balance)
	if err != nil {
		t.Fatal(err)
	}
	var total, recv uint64
	last := uint64(0)
	for _, o := range outs {
		if o.Amount < last {
			t.Fatal("outputs not in ascending order")
		}
		last = o.Amount
		total += o.Amount
		if o.Context == ctxReceiver {
			recv += o.Amount
		}
	}
	if total != ch.afterStage1 {
		t.Errorf("balance %d: outputs total %d, want %d", balance, total, ch.afterStage1)
	}
	if ch.sel.valueAfterFees(recv) < balance {
		t.Errorf("balance %d: receiver outputs %d are worth %d after fees", balance, recv, ch.sel.valueAfterFees(recv))
	}
}

func TestCloseSwapSpendsUnderNUT11(t *testing.T) {
	cp := newChannelPair(t, 1000, 100, 0)
	signer, _ := cp.sender.SenderSigner(cp.senderKey)
	recv, err := cp.receiver.ReceiverSigner(cp.recvKey)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Unix(int64(cp.params.ExpiryTime)-1, 0)
	after := time.Unix(int64(cp.params.ExpiryTime), 0)

	sig300, _ := signer.SignBalance(300)
	sig500, _ := signer.SignBalance(500)
	in, out, err := recv.CloseSwap(500, sig500)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySwap(in, out, before); err != nil {
		t.Fatalf("close swap refused: %v", err)
	}
	if err := VerifySwap(in, out, after); err != nil {
		t.Fatalf("close swap refused after expiry: %v", err)
	}

	// Outputs combined from two commitments (the receiver's of 500, the
	// sender's of 300) must be refused.
	_, out300, _ := recv.CloseSwap(300, sig300)
	mixed := combine(out, out300)
	if SwapMessage(in, mixed) == SwapMessage(in, out) || SwapMessage(in, mixed) == SwapMessage(in, out300) {
		t.Fatal("test does not mix the commitments")
	}
	if err := VerifySwap(in, mixed, before); err == nil {
		t.Fatal("swap with outputs from two commitments accepted")
	}

	// Only the sender's signature: refused before expiry.
	in1, _, _ := cp.receiver.CommitmentSwap(500)
	in1[0].Witness = Witness{Signatures: []string{hexBytes(sig500[:])}}.String()
	if VerifySwap(in1, out, before) == nil {
		t.Fatal("commitment with one signature accepted")
	}

	// The refund pathway: valid after the expiry only.
	refund, _ := cp.sender.RefundSigner(cp.senderKey)
	rin, err := refund.RefundSwap(out)
	if err != nil {
		t.Fatal(err)
	}
	if VerifySwap(rin, out, before) == nil {
		t.Fatal("refund accepted before expiry")
	}
	if err := VerifySwap(rin, out, after); err != nil {
		t.Fatalf("refund refused after expiry: %v", err)
	}
}

// combine takes the receiver-owned outputs of a and the rest from b, by
// position in b.
func combine(a, b []BlindedMessage) []BlindedMessage {
	out := append([]BlindedMessage(nil), b...)
	for i := range out {
		if i < len(a) && a[i].Amount == out[i].Amount {
			out[i] = a[i]
		}
	}
	if len(a) > len(b) {
		out = append(out, a[len(b):]...)
	}
	return out
}

// Each party can spend its commitment outputs with its NUT-28 key.
func TestCommitmentOutputsSpendable(t *testing.T) {
	cp := newChannelPair(t, 200, 0, 0)
	outs, err := cp.receiver.CommitmentOutputs(77)
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]*btcec.PrivateKey{ctxReceiver: cp.recvKey, ctxSender: cp.senderKey}
	for _, o := range outs {
		k, err := cp.receiver.OutputKey(o, owners[o.Context])
		if err != nil {
			t.Fatalf("%s %d/%d: %v", o.Context, o.Amount, o.Index, err)
		}
		p := Proof{Amount: o.Amount, Secret: o.Secret, C: "02"}
		sig, err := SignMessage(k, []byte(o.Secret))
		if err != nil {
			t.Fatal(err)
		}
		p.Witness = Witness{Signatures: []string{sig}}.String()
		if err := VerifyProof(p, time.Unix(0, 0)); err != nil {
			t.Fatalf("%s %d/%d: %v", o.Context, o.Amount, o.Index, err)
		}
	}
	// The other party's key does not work.
	if _, err := cp.receiver.OutputKey(outs[0], cp.senderKey); err == nil && outs[0].Context == ctxReceiver {
		t.Fatal("sender derived a key for a receiver output")
	}
}

// The examples of the channel draft's prose.
func TestDraftAmountExamples(t *testing.T) {
	pow10 := []uint64{1, 10, 100, 1000}
	sel, _ := newAmountSelector(pow10, 0, 0)
	if got := sel.counts(543); !slices.Equal(got, []uint64{0, 5, 4, 3}) {
		t.Errorf("543 in powers of ten: %v", got)
	}
	sel, _ = newAmountSelector(pow10, 99, 0)
	if got := sel.counts(543); !slices.Equal(got, []uint64{54, 3}) {
		t.Errorf("543 with maximum 99: %v", got)
	}
	sel, _ = newAmountSelector([]uint64{1, 2, 4, 8, 16}, 0, 400)
	if sel.valueAfterFees(7) != 5 || sel.valueAfterFees(8) != 7 {
		t.Errorf("fees at 400 ppk: %d, %d", sel.valueAfterFees(7), sel.valueAfterFees(8))
	}
	if x, _ := sel.inverse(6, 100); x != 8 {
		t.Errorf("inverse(6) = %d, want 8", x)
	}
}

func TestChannelKey(t *testing.T) {
	seed := []byte("wallet seed of at least sixteen bytes")
	a, _ := ChannelKey(seed, 0)
	b, _ := ChannelKey(seed, 1)
	a2, _ := ChannelKey(seed, 0)
	if a.Key.Equals(&b.Key) || !a.Key.Equals(&a2.Key) {
		t.Fatal("channel keys not fresh per counter or not deterministic")
	}
}
