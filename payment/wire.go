package payment

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
)

// Payment messages travel inside one hop's encrypted circuit session. Every
// message starts with a version and a type byte:
//
//	 0         1         2
//	+---------+---------+----------------
//	| version |  type   | body ...
//	+---------+---------+----------------
//
// Bodies are fixed layouts of big-endian integers, length-prefixed strings
// and raw keys (specs/05-payment.md, "Messages"). A decoder takes exactly
// one message: trailing bytes are an error.

// WireVersion is the version byte of this format.
const WireVersion = 1

// MsgType is the type byte of a payment message.
type MsgType uint8

// Message types.
const (
	TypeChannelOpen   MsgType = 1
	TypeBalanceUpdate MsgType = 2
	TypeAck           MsgType = 3
	TypeError         MsgType = 4
)

// Sizes of the fixed parts of messages.
const (
	headerSize       = 2
	pubKeySize       = btcec.PubKeyBytesLenCompressed
	fundingProofSize = pubKeySize + 32 + 32
	// BalanceUpdateSize is the size of a BALANCE_UPDATE message.
	BalanceUpdateSize = headerSize + 32 + 8 + SignatureSize
	// AckSize is the size of an ACK message.
	AckSize = headerSize + 32 + 8
	// ErrorSize is the size of an ERROR message.
	ErrorSize = headerSize + 32 + 1 + 8
	// openFixedSize is a CHANNEL_OPEN without its strings and proofs.
	openFixedSize = headerSize + 3 + 8 + 8 + 2 + 8 + 8 + 8 + 2*pubKeySize + 1 + SignatureSize
	// MaxChannelOpenSize is the largest CHANNEL_OPEN message.
	MaxChannelOpenSize = openFixedSize + MaxMintURLLen + MaxUnitLen + 33 + MaxFundingProofs*fundingProofSize
)

// Decoding errors. All wrap ErrMalformed.
var (
	ErrMalformed = errors.New("payment: malformed message")
	ErrTruncated = fmt.Errorf("%w: truncated", ErrMalformed)
	ErrTrailing  = fmt.Errorf("%w: trailing bytes", ErrMalformed)
	ErrTooLarge  = fmt.Errorf("%w: too large", ErrMalformed)
	ErrVersion   = fmt.Errorf("%w: unknown version", ErrMalformed)
	ErrType      = fmt.Errorf("%w: unexpected type", ErrMalformed)
	ErrField     = fmt.Errorf("%w: invalid field", ErrMalformed)
)

// Message is a decoded payment message.
type Message interface {
	Type() MsgType
	MarshalBinary() ([]byte, error)
}

// FundingProof is a funding proof as sent in CHANNEL_OPEN: the unblinded
// signature C and the DLEQ proof (e, s). Amount, secret, keyset and the
// blinding factor r are deterministic and not sent.
type FundingProof struct {
	C    [pubKeySize]byte
	E, S [32]byte
}

// ChannelOpen opens a channel: parameters, funding proofs and the sender's
// signature on the zero-balance commitment.
//
//	field            size
//	mint_len, mint   1 + ≤200   printable ASCII, no '|'
//	unit_len, unit   1 + ≤16    [a-z0-9]
//	kid_len, kid     1 + 8|33   keyset id bytes
//	capacity         8
//	funding_amount   8
//	input_fee_ppk    2          ≤ 999
//	max_output       8
//	setup_time       8
//	expiry_time      8
//	sender_pubkey    33
//	receiver_pubkey  33
//	n_proofs         1          ≤ 64
//	proofs           n × 97     C(33) e(32) s(32)
//	zero_sig         64
type ChannelOpen struct {
	Params  ChannelParams
	Funding []FundingProof
	ZeroSig [SignatureSize]byte
}

// BalanceUpdate pays a channel up to a cumulative balance.
//
//	channel_id 32 | balance 8 | sig 64
type BalanceUpdate struct {
	Channel ChannelID
	Balance uint64
	Sig     [SignatureSize]byte
}

// Ack is the relay's acceptance of a channel open or balance: the balance
// it now holds a signature for.
//
//	channel_id 32 | balance 8
type Ack struct {
	Channel ChannelID
	Balance uint64
}

// ErrorReply is the relay's refusal, with a reason and the last balance it
// accepted on the channel (0 if none).
//
//	channel_id 32 | code 1 | balance 8
type ErrorReply struct {
	Channel ChannelID
	Code    ErrorCode
	Balance uint64
}

// Type implements Message.
func (*ChannelOpen) Type() MsgType { return TypeChannelOpen }

// Type implements Message.
func (*BalanceUpdate) Type() MsgType { return TypeBalanceUpdate }

// Type implements Message.
func (*Ack) Type() MsgType { return TypeAck }

// Type implements Message.
func (*ErrorReply) Type() MsgType { return TypeError }

func header(t MsgType, size int) []byte {
	b := make([]byte, 2, size)
	b[0], b[1] = WireVersion, byte(t)
	return b
}

// MarshalBinary encodes the message; it fails on parameters the format
// cannot carry.
func (m *ChannelOpen) MarshalBinary() ([]byte, error) {
	p := &m.Params
	kid, err := hex.DecodeString(p.KeysetID)
	switch {
	case err != nil || (len(kid) != 8 && len(kid) != 33):
		return nil, fmt.Errorf("%w: keyset id", ErrField)
	case !printable(p.Mint, MaxMintURLLen) || !lowerAlnum(p.Unit, MaxUnitLen):
		return nil, fmt.Errorf("%w: mint or unit", ErrField)
	case p.InputFeePPK > MaxFeePPK || len(m.Funding) > MaxFundingProofs:
		return nil, fmt.Errorf("%w: fee or proof count", ErrField)
	case p.Sender == nil || p.Receiver == nil:
		return nil, fmt.Errorf("%w: missing key", ErrField)
	}
	b := header(TypeChannelOpen, openFixedSize+len(p.Mint)+len(p.Unit)+len(kid)+len(m.Funding)*fundingProofSize)
	b = appendString(b, p.Mint)
	b = appendString(b, p.Unit)
	b = appendString(b, string(kid))
	for _, v := range []uint64{p.Capacity, p.FundingAmount} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(p.InputFeePPK))
	for _, v := range []uint64{p.MaxOutputAmount, p.SetupTime, p.ExpiryTime} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = append(b, p.Sender.SerializeCompressed()...)
	b = append(b, p.Receiver.SerializeCompressed()...)
	b = append(b, byte(len(m.Funding)))
	for _, f := range m.Funding {
		b = append(append(append(b, f.C[:]...), f.E[:]...), f.S[:]...)
	}
	return append(b, m.ZeroSig[:]...), nil
}

func appendString(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

// UnmarshalBinary decodes a CHANNEL_OPEN, checking every field's syntax;
// whether the relay accepts the channel is decided by Ledger.Open.
func (m *ChannelOpen) UnmarshalBinary(b []byte) error {
	if len(b) > MaxChannelOpenSize {
		return ErrTooLarge
	}
	r, err := newReader(b, TypeChannelOpen)
	if err != nil {
		return err
	}
	var p ChannelParams
	var kid string
	p.Mint, p.Unit, kid = r.string(), r.string(), r.string()
	p.Capacity, p.FundingAmount = r.u64(), r.u64()
	p.InputFeePPK = uint64(r.u16())
	p.MaxOutputAmount, p.SetupTime, p.ExpiryTime = r.u64(), r.u64(), r.u64()
	p.Sender, p.Receiver = r.pubKey(), r.pubKey()
	n := int(r.u8())
	if r.err == nil && n > MaxFundingProofs {
		return fmt.Errorf("%w: %d funding proofs", ErrField, n)
	}
	funding := make([]FundingProof, n)
	for i := range funding {
		r.bytes(funding[i].C[:])
		r.bytes(funding[i].E[:])
		r.bytes(funding[i].S[:])
		if r.err == nil {
			if _, err := btcec.ParsePubKey(funding[i].C[:]); err != nil {
				return fmt.Errorf("%w: funding proof %d: C is not a point", ErrField, i)
			}
		}
	}
	var sig [SignatureSize]byte
	r.bytes(sig[:])
	if err := r.end(); err != nil {
		return err
	}
	p.KeysetID = hex.EncodeToString([]byte(kid))
	switch {
	case !printable(p.Mint, MaxMintURLLen) || p.Mint == "":
		return fmt.Errorf("%w: mint", ErrField)
	case !lowerAlnum(p.Unit, MaxUnitLen):
		return fmt.Errorf("%w: unit", ErrField)
	case len(kid) != 8 && len(kid) != 33:
		return fmt.Errorf("%w: keyset id length", ErrField)
	case p.InputFeePPK > MaxFeePPK:
		return fmt.Errorf("%w: input fee", ErrField)
	}
	*m = ChannelOpen{Params: p, Funding: funding, ZeroSig: sig}
	return nil
}

// MarshalBinary encodes the message.
func (m *BalanceUpdate) MarshalBinary() ([]byte, error) {
	b := header(TypeBalanceUpdate, BalanceUpdateSize)
	b = append(b, m.Channel[:]...)
	b = binary.BigEndian.AppendUint64(b, m.Balance)
	return append(b, m.Sig[:]...), nil
}

// UnmarshalBinary decodes a BALANCE_UPDATE.
func (m *BalanceUpdate) UnmarshalBinary(b []byte) error {
	if len(b) > BalanceUpdateSize {
		return ErrTooLarge
	}
	r, err := newReader(b, TypeBalanceUpdate)
	if err != nil {
		return err
	}
	var u BalanceUpdate
	r.bytes(u.Channel[:])
	u.Balance = r.u64()
	r.bytes(u.Sig[:])
	if err := r.end(); err != nil {
		return err
	}
	*m = u
	return nil
}

// MarshalBinary encodes the message.
func (m *Ack) MarshalBinary() ([]byte, error) {
	b := header(TypeAck, AckSize)
	b = append(b, m.Channel[:]...)
	return binary.BigEndian.AppendUint64(b, m.Balance), nil
}

// UnmarshalBinary decodes an ACK.
func (m *Ack) UnmarshalBinary(b []byte) error {
	if len(b) > AckSize {
		return ErrTooLarge
	}
	r, err := newReader(b, TypeAck)
	if err != nil {
		return err
	}
	var a Ack
	r.bytes(a.Channel[:])
	a.Balance = r.u64()
	if err := r.end(); err != nil {
		return err
	}
	*m = a
	return nil
}

// MarshalBinary encodes the message.
func (m *ErrorReply) MarshalBinary() ([]byte, error) {
	if !m.Code.known() {
		return nil, fmt.Errorf("%w: error code %d", ErrField, m.Code)
	}
	b := header(TypeError, ErrorSize)
	b = append(b, m.Channel[:]...)
	b = append(b, byte(m.Code))
	return binary.BigEndian.AppendUint64(b, m.Balance), nil
}

// UnmarshalBinary decodes an ERROR.
func (m *ErrorReply) UnmarshalBinary(b []byte) error {
	if len(b) > ErrorSize {
		return ErrTooLarge
	}
	r, err := newReader(b, TypeError)
	if err != nil {
		return err
	}
	var e ErrorReply
	r.bytes(e.Channel[:])
	e.Code = ErrorCode(r.u8())
	e.Balance = r.u64()
	if err := r.end(); err != nil {
		return err
	}
	if !e.Code.known() {
		return fmt.Errorf("%w: error code %d", ErrField, e.Code)
	}
	*m = e
	return nil
}

// DecodeMessage decodes any payment message by its type byte.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) < headerSize {
		return nil, ErrTruncated
	}
	var m interface {
		Message
		UnmarshalBinary([]byte) error
	}
	switch MsgType(b[1]) {
	case TypeChannelOpen:
		m = new(ChannelOpen)
	case TypeBalanceUpdate:
		m = new(BalanceUpdate)
	case TypeAck:
		m = new(Ack)
	case TypeError:
		m = new(ErrorReply)
	default:
		if b[0] != WireVersion {
			return nil, ErrVersion
		}
		return nil, fmt.Errorf("%w: %d", ErrType, b[1])
	}
	if err := m.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return m, nil
}

// reader reads fields, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func newReader(b []byte, t MsgType) (*reader, error) {
	switch {
	case len(b) < headerSize:
		return nil, ErrTruncated
	case b[0] != WireVersion:
		return nil, ErrVersion
	case MsgType(b[1]) != t:
		return nil, fmt.Errorf("%w: %d", ErrType, b[1])
	}
	return &reader{b: b[headerSize:]}, nil
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err, r.b = ErrTruncated, nil
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) bytes(dst []byte) { copy(dst, r.take(len(dst))) }

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) string() string { return string(r.take(int(r.u8()))) }

func (r *reader) pubKey() *btcec.PublicKey {
	b := r.take(pubKeySize)
	if b == nil {
		return nil
	}
	k, err := btcec.ParsePubKey(b)
	if err != nil || (b[0] != 2 && b[0] != 3) {
		r.err = fmt.Errorf("%w: public key", ErrField)
		return nil
	}
	return k
}

// end reports the first error, or ErrTrailing if bytes are left.
func (r *reader) end() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return ErrTrailing
	}
	return nil
}
