package payment

import (
	"errors"
	"testing"
)

func TestPayerWithLedger(t *testing.T) {
	cp := newChannelPair(t, 100, 0, 0)
	l, _ := newTestLedger(t, cp)
	p, err := NewChannelPayer(cp.sender, cp.senderKey)
	if err != nil {
		t.Fatal(err)
	}
	open, _ := p.Open()
	reply, _, err := l.Handle(open)
	if err != nil || p.HandleReply(reply) != nil {
		t.Fatalf("open: %v", err)
	}
	var credited uint64
	// 250 msat five times: ceilings 1, 1, 1, 1, 2 sat.
	for i := 0; i < 5; i++ {
		msg, err := p.PayMsat(250)
		if err != nil {
			t.Fatal(err)
		}
		if msg == nil {
			continue
		}
		reply, c, err := l.Handle(msg)
		if err != nil {
			t.Fatal(err)
		}
		credited += c
		if err := p.HandleReply(reply); err != nil {
			t.Fatal(err)
		}
	}
	if p.Signed() != 2 || p.Acked() != 2 || credited != 2 {
		t.Fatalf("signed %d, acked %d, credited %d; want 2", p.Signed(), p.Acked(), credited)
	}
	// A resent update is a replay, which counts as acknowledged.
	msg, _ := p.Resend()
	reply, _, _ = l.Handle(msg)
	if err := p.HandleReply(reply); err != nil {
		t.Fatalf("replay reply: %v", err)
	}
	if _, err := p.PayMsat(99_000); !errors.Is(err, ErrOverCapacity) {
		t.Fatalf("over capacity: %v", err)
	}
	if msg, err := p.PayMsat(98_000); err != nil || msg == nil || p.Remaining() != 0 {
		t.Fatalf("up to capacity: %v, remaining %d", err, p.Remaining())
	}
	// An error reply comes back typed.
	var re *ReplyError
	bad, _ := (&ErrorReply{Channel: cp.sender.ID(), Code: CodeChannelClosed}).MarshalBinary()
	if err := p.HandleReply(bad); !errors.As(err, &re) || re.Code != CodeChannelClosed {
		t.Fatalf("error reply: %v", err)
	}
}
