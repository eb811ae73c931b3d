package payment

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

var (
	validOnce sync.Once
	validMsgs map[MsgType][]byte
)

// validMessages returns one valid encoding of each message type (a fresh
// copy; built once).
func validMessages(t testing.TB) map[MsgType][]byte {
	t.Helper()
	validOnce.Do(func() { validMsgs = buildValidMessages(t) })
	out := map[MsgType][]byte{}
	for k, v := range validMsgs {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

func buildValidMessages(t testing.TB) map[MsgType][]byte {
	cp := newChannelPair(t, 1000, 100, 0)
	signer, _ := cp.sender.SenderSigner(cp.senderKey)
	open, err := NewChannelOpen(cp.sender, signer)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := signer.SignBalance(42)
	msgs := []Message{
		open,
		&BalanceUpdate{Channel: cp.sender.ID(), Balance: 42, Sig: sig},
		&Ack{Channel: cp.sender.ID(), Balance: 42},
		&ErrorReply{Channel: cp.sender.ID(), Code: CodeDecreasing, Balance: 42},
	}
	out := map[MsgType][]byte{}
	for _, m := range msgs {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out[m.Type()] = b
	}
	return out
}

func TestWireRoundTrip(t *testing.T) {
	for typ, b := range validMessages(t) {
		m, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("type %d: %v", typ, err)
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("type %d: round trip differs (%v)", typ, err)
		}
	}
}

func TestWireSizes(t *testing.T) {
	msgs := validMessages(t)
	for typ, want := range map[MsgType]int{TypeBalanceUpdate: 106, TypeAck: 42, TypeError: 43} {
		if len(msgs[typ]) != want {
			t.Errorf("type %d: %d bytes, want %d", typ, len(msgs[typ]), want)
		}
	}
	if n := len(msgs[TypeChannelOpen]); n > MaxChannelOpenSize {
		t.Errorf("open is %d bytes, above the maximum %d", n, MaxChannelOpenSize)
	}
}

func TestWireRejects(t *testing.T) {
	for typ, b := range validMessages(t) {
		for n := 0; n < len(b); n++ {
			if _, err := DecodeMessage(b[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("type %d truncated to %d: %v", typ, n, err)
			}
		}
		long := append(append([]byte(nil), b...), 0)
		_, err := DecodeMessage(long)
		if !errors.Is(err, ErrTrailing) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("type %d with a trailing byte: %v", typ, err)
		}
		v := append([]byte(nil), b...)
		v[0] = 9
		if _, err := DecodeMessage(v); !errors.Is(err, ErrVersion) {
			t.Fatalf("type %d with version 9: %v", typ, err)
		}
	}
	if _, err := DecodeMessage([]byte{1, 99}); !errors.Is(err, ErrType) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := DecodeMessage(make([]byte, MaxChannelOpenSize+1)); err == nil {
		t.Fatal("oversized message decoded")
	}
	big := make([]byte, MaxChannelOpenSize+1)
	big[0], big[1] = WireVersion, byte(TypeChannelOpen)
	if _, err := DecodeMessage(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized open: %v", err)
	}
	e := validMessages(t)[TypeError]
	e[2+32] = 200
	if _, err := DecodeMessage(e); !errors.Is(err, ErrField) {
		t.Fatalf("unknown error code: %v", err)
	}
}

func TestWireOpenFieldChecks(t *testing.T) {
	b := validMessages(t)[TypeChannelOpen]
	// The mint URL starts at offset 3; put a '|' into it.
	bad := append([]byte(nil), b...)
	bad[3] = '|'
	if _, err := DecodeMessage(bad); !errors.Is(err, ErrField) {
		t.Fatalf("mint with '|': %v", err)
	}
	// A funding proof count above the limit.
	var m ChannelOpen
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	m.Funding = make([]FundingProof, MaxFundingProofs+1)
	if _, err := m.MarshalBinary(); err == nil {
		t.Fatal("encoded too many proofs")
	}
}

func fuzzRoundTrip[T interface {
	*E
	Message
	UnmarshalBinary([]byte) error
}, E any](f *testing.F, typ MsgType) {
	for _, b := range validMessages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := T(new(E))
		if err := m.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error outside ErrMalformed: %v", err)
			}
			return
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("round trip: %v", err)
		}
		if m.Type() != typ {
			t.Fatal("wrong type")
		}
	})
}

func FuzzChannelOpen(f *testing.F)   { fuzzRoundTrip[*ChannelOpen](f, TypeChannelOpen) }
func FuzzBalanceUpdate(f *testing.F) { fuzzRoundTrip[*BalanceUpdate](f, TypeBalanceUpdate) }
func FuzzAck(f *testing.F)           { fuzzRoundTrip[*Ack](f, TypeAck) }
func FuzzErrorReply(f *testing.F)    { fuzzRoundTrip[*ErrorReply](f, TypeError) }

func FuzzDecodeMessage(f *testing.F) {
	for _, b := range validMessages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error outside ErrMalformed: %v", err)
			}
			return
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func TestMaxChannelOpenSize(t *testing.T) {
	if MaxChannelOpenSize != 6635 || openFixedSize != 178 {
		t.Fatalf("sizes changed: max %d, fixed %d (update specs/05-payment.md)", MaxChannelOpenSize, openFixedSize)
	}
}
