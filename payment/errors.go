package payment

import "errors"

// ErrorCode is the reason in an ERROR reply. A client reacts to the code:
// resynchronise on the returned balance, open a new channel, or give up on
// the relay.
type ErrorCode uint8

// Error codes.
const (
	// CodeMalformed: the message did not decode. Give up on the relay.
	CodeMalformed ErrorCode = 1
	// CodeUnknownChannel: no open channel has this id. Open one.
	CodeUnknownChannel ErrorCode = 2
	// CodeReplay: the balance equals the accepted one. Nothing to do.
	CodeReplay ErrorCode = 3
	// CodeDecreasing: the balance is below the accepted one. Resynchronise
	// on the returned balance.
	CodeDecreasing ErrorCode = 4
	// CodeOverCapacity: the balance exceeds the capacity. Open a new
	// channel.
	CodeOverCapacity ErrorCode = 5
	// CodeBadSignature: the signature does not verify.
	CodeBadSignature ErrorCode = 6
	// CodeChannelClosed: the channel is closed or too close to expiry.
	// Open a new channel.
	CodeChannelClosed ErrorCode = 7
	// CodeParams: the relay does not accept these parameters (mint, unit,
	// keyset, capacity, expiry). Choose others from its descriptor.
	CodeParams ErrorCode = 8
	// CodeFunding: the funding proofs are wrong (count, DLEQ, secrets).
	CodeFunding ErrorCode = 9
	// CodeDuplicate: a channel with this id is already open.
	CodeDuplicate ErrorCode = 10
	// CodeBusy: the relay holds too many channels. Retry later or
	// elsewhere.
	CodeBusy ErrorCode = 11
)

func (c ErrorCode) known() bool { return c >= CodeMalformed && c <= CodeBusy }

// Ledger errors.
var (
	ErrUnknownChannel = errors.New("payment: unknown channel")
	ErrReplay         = errors.New("payment: balance already accepted")
	ErrDecreasing     = errors.New("payment: balance below the accepted one")
	ErrChannelClosed  = errors.New("payment: channel closed or about to expire")
	ErrDuplicate      = errors.New("payment: channel already open")
	ErrBusy           = errors.New("payment: too many channels")
	ErrPolicy         = errors.New("payment: channel parameters not accepted")
	// ErrStore: the ledger could not persist a change; it was not made.
	ErrStore = errors.New("payment: ledger store failed")
)

// CodeOf maps an error of this package to its wire code.
func CodeOf(err error) ErrorCode {
	table := []struct {
		err  error
		code ErrorCode
	}{
		{ErrMalformed, CodeMalformed},
		{ErrUnknownChannel, CodeUnknownChannel},
		{ErrReplay, CodeReplay},
		{ErrDecreasing, CodeDecreasing},
		{ErrOverCapacity, CodeOverCapacity},
		{ErrBadSignature, CodeBadSignature},
		{ErrChannelClosed, CodeChannelClosed},
		{ErrDuplicate, CodeDuplicate},
		{ErrBusy, CodeBusy},
		{ErrStore, CodeBusy},
		{ErrFunding, CodeFunding},
		{ErrDLEQ, CodeFunding},
		{ErrNotFunded, CodeFunding},
	}
	for _, t := range table {
		if errors.Is(err, t.err) {
			return t.code
		}
	}
	return CodeParams
}
