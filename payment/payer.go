package payment

import (
	"fmt"
	"math/bits"

	"github.com/btcsuite/btcd/btcec/v2"
)

// ReplyError is a relay's ERROR reply, as a Go error.
type ReplyError struct {
	Channel ChannelID
	Code    ErrorCode
	Balance uint64 // the relay's accepted balance
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("payment: relay refused (code %d)", e.Code)
}

// ChannelPayer is the client side of one channel: it turns what the
// client owes, in msat, into BALANCE_UPDATE messages for the ceiling in the
// channel's unit, and tracks what the relay acknowledged. It is not safe for
// concurrent use: the goroutine that owns the circuit owns its payers.
type ChannelPayer struct {
	ch     *Channel
	signer *Signer
	msat   uint64 // cumulative msat paid for
	signed uint64 // highest balance signed, in channel units
	acked  uint64 // highest balance the relay acknowledged
}

// NewChannelPayer returns the payer of a funded channel whose sender key is
// senderKey.
func NewChannelPayer(ch *Channel, senderKey *btcec.PrivateKey) (*ChannelPayer, error) {
	s, err := ch.SenderSigner(senderKey)
	if err != nil {
		return nil, err
	}
	if ch.FundingProofs() == nil {
		return nil, ErrNotFunded
	}
	return &ChannelPayer{ch: ch, signer: s}, nil
}

// Open returns the CHANNEL_OPEN message.
func (p *ChannelPayer) Open() ([]byte, error) {
	m, err := NewChannelOpen(p.ch, p.signer)
	if err != nil {
		return nil, err
	}
	return m.MarshalBinary()
}

// PayMsat adds msat to what is paid for and returns the BALANCE_UPDATE for
// the new ceiling, or nil if the ceiling did not move. It fails with
// ErrOverCapacity, changing nothing, if the channel cannot carry it.
func (p *ChannelPayer) PayMsat(msat uint64) ([]byte, error) {
	total, carry := bits.Add64(p.msat, msat, 0)
	if carry != 0 {
		return nil, ErrOverCapacity
	}
	units, err := UnitsCeil(total, p.ch.params.Unit)
	if err != nil {
		return nil, err
	}
	if units > p.ch.params.Capacity {
		return nil, ErrOverCapacity
	}
	p.msat = total
	if units == p.signed {
		return nil, nil
	}
	return p.update(units)
}

func (p *ChannelPayer) update(balance uint64) ([]byte, error) {
	sig, err := p.signer.SignBalance(balance)
	if err != nil {
		return nil, err
	}
	p.signed = balance
	return (&BalanceUpdate{Channel: p.ch.id, Balance: balance, Sig: sig}).MarshalBinary()
}

// Resend returns the update for the highest signed balance again (after a
// lost message).
func (p *ChannelPayer) Resend() ([]byte, error) {
	if p.signed == 0 {
		return nil, nil
	}
	return p.update(p.signed)
}

// Signed is the highest balance signed; Acked the highest acknowledged;
// Remaining what the channel can still carry, in channel units.
func (p *ChannelPayer) Signed() uint64    { return p.signed }
func (p *ChannelPayer) Acked() uint64     { return p.acked }
func (p *ChannelPayer) Remaining() uint64 { return p.ch.params.Capacity - p.signed }

// HandleReply processes the relay's reply on this channel. An ACK raises
// the acknowledged balance; an ERROR comes back as *ReplyError. A replay
// the relay already holds counts as acknowledged.
func (p *ChannelPayer) HandleReply(b []byte) error {
	m, err := DecodeMessage(b)
	if err != nil {
		return err
	}
	switch r := m.(type) {
	case *Ack:
		if r.Channel != p.ch.id {
			return fmt.Errorf("%w: reply for another channel", ErrField)
		}
		p.acked = max(p.acked, min(r.Balance, p.signed))
		return nil
	case *ErrorReply:
		if r.Channel == p.ch.id && r.Code == CodeReplay {
			p.acked = max(p.acked, min(r.Balance, p.signed))
			return nil
		}
		return &ReplyError{Channel: r.Channel, Code: r.Code, Balance: r.Balance}
	}
	return fmt.Errorf("%w: %d is not a reply", ErrType, m.Type())
}
