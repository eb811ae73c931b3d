package router

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/payment"
)

// PaidConfig configures a PaidMeter. Prices and allowances are the values
// the relay publishes in its descriptor (Payment, Price).
type PaidConfig struct {
	// Ledger verifies and records the channels. Required.
	Ledger *payment.Ledger
	// PerMiB is the price per MiB of cells moved, either direction, and
	// PerCircuit the price of a circuit, both in msat.
	PerMiB, PerCircuit uint64
	// FreeBytes of cells a circuit may move before it must have paid
	// what it owes (an allowance to open channels, not a discount).
	FreeBytes uint64
	// Grace is how long a circuit may stay unpaid before it is torn down
	// (default 30 s).
	Grace time.Duration
	// MaxChannels bounds the channels opened on one circuit (default 4).
	MaxChannels int
	Logger      *slog.Logger
}

// PaidMeter is the Meter of a relay that charges for circuits: it credits
// verified balance updates (no mint contact) and pauses circuits that owe
// more than they paid. Each circuit is billed
//
//	owed(bytes) = PerCircuit + ⌈bytes × PerMiB / 2^20⌉ msat
//
// where bytes counts every cell it moved (circuit.CellSize each); it may
// run while bytes ≤ FreeBytes or paid ≥ owed(bytes).
type PaidMeter struct {
	cfg    PaidConfig
	pauses atomic.Uint64 // circuits paused for payment, ever

	mu    sync.Mutex // guards ended
	ended []payment.ChannelID
}

// NewPaidMeter returns a meter over cfg.Ledger.
func NewPaidMeter(cfg PaidConfig) (*PaidMeter, error) {
	if cfg.Ledger == nil {
		return nil, errors.New("router: paid meter needs a ledger")
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.MaxChannels <= 0 {
		cfg.MaxChannels = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &PaidMeter{cfg: cfg}, nil
}

// Owed is what a circuit that moved bytes owes, in msat.
func (m *PaidMeter) Owed(bytes uint64) uint64 {
	hi, lo := bits.Mul64(bytes, m.cfg.PerMiB)
	if hi>>20 != 0 {
		return math.MaxUint64
	}
	q := lo>>20 | hi<<44
	if lo&(1<<20-1) != 0 && q < math.MaxUint64 {
		q++
	}
	sum, carry := bits.Add64(q, m.cfg.PerCircuit, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return sum
}

// Open implements Meter.
func (m *PaidMeter) Open(ctl Control) CircuitMeter {
	return &paidCircuit{m: m, ctl: ctl, channels: map[payment.ChannelID]uint64{}}
}

// Pauses is how many times a circuit was paused for payment.
func (m *PaidMeter) Pauses() uint64 { return m.pauses.Load() }

// Ended returns, and forgets, the channels of circuits that have closed:
// they take no more payments and can be settled.
func (m *PaidMeter) Ended() []payment.ChannelID {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.ended
	m.ended = nil
	return e
}

// paidCircuit meters one circuit.
//
//	        bytes > FreeBytes and paid < owed
//	PAID ─────────────────────────────────────► UNPAID ── Grace ──► destroyed
//	  ▲                                           │
//	  └──────── payment: paid >= owed, Resume ◄───┘
type paidCircuit struct {
	m   *PaidMeter
	ctl Control
	asm payment.Reassembler // Deliver's only

	mu       sync.Mutex // guards the fields below
	cells    uint64
	paid     uint64                       // msat credited
	channels map[payment.ChannelID]uint64 // msat per channel unit
	unpaid   bool
	grace    *time.Timer
	closed   bool
	queue    [][]byte // payment messages for the worker
	working  bool     // the worker runs
}

// Cells implements CircuitMeter.
func (p *paidCircuit) Cells(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cells += uint64(n)
	if p.creditLocked() {
		return true
	}
	if !p.unpaid && !p.closed {
		p.unpaid = true
		p.m.pauses.Add(1)
		p.grace = time.AfterFunc(p.m.cfg.Grace, p.expire)
	}
	return false
}

func (p *paidCircuit) creditLocked() bool {
	bytes := p.cells * circuit.CellSize
	return bytes <= p.m.cfg.FreeBytes || p.paid >= p.m.Owed(bytes)
}

// expire tears the circuit down if it is still unpaid.
func (p *paidCircuit) expire() {
	p.mu.Lock()
	unpaid := p.unpaid && !p.closed
	p.mu.Unlock()
	if unpaid {
		p.ctl.Destroy(circuit.DestroyPayment)
	}
}

// Deliver implements CircuitMeter: it reassembles CHANNEL_OPEN and
// BALANCE_UPDATE messages and hands them to the circuit's payment worker,
// which verifies and stores each (an fsync must not stall the circuit)
// and answers with an ACK or ERROR through Control.Reply.
func (p *paidCircuit) Deliver(rc circuit.RelayCell) (*circuit.RelayCell, error) {
	if rc.Command != circuit.RelayPayChannelOpen && rc.Command != circuit.RelayPayBalanceUpdate {
		return nil, fmt.Errorf("router: payment command %v not accepted", rc.Command)
	}
	msg, err := p.asm.Add(rc.Body)
	if err != nil || msg == nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) >= maxQueuedPayments {
		return nil, errors.New("router: too many payment messages queued")
	}
	p.queue = append(p.queue, msg)
	if !p.working {
		p.working = true
		go p.work()
	}
	return nil, nil
}

// maxQueuedPayments bounds the messages of one circuit waiting for
// verification; a client waits for ACKs long before.
const maxQueuedPayments = 32

// work handles queued payment messages in order until none is left.
func (p *paidCircuit) work() {
	for {
		p.mu.Lock()
		if len(p.queue) == 0 || p.closed {
			p.queue, p.working = nil, false
			p.mu.Unlock()
			return
		}
		msg := p.queue[0]
		p.queue = p.queue[1:]
		p.mu.Unlock()
		reply, err := p.handle(msg)
		if err != nil {
			p.ctl.Destroy(circuit.DestroyProtocol)
			continue
		}
		frags, _ := payment.Fragment(reply, circuit.MaxRelayBody) // a reply is one fragment
		p.ctl.Reply(circuit.RelayCell{Command: circuit.RelayPayAck, Body: frags[0]})
	}
}

// handle applies one message and returns the reply to send. An error
// (malformed message) destroys the circuit; refusals are replies.
func (p *paidCircuit) handle(msg []byte) ([]byte, error) {
	m, err := payment.DecodeMessage(msg)
	if err != nil {
		return nil, err
	}
	var id payment.ChannelID
	switch m := m.(type) {
	case *payment.ChannelOpen:
		if p.numChannels() >= p.m.cfg.MaxChannels {
			return errorReply(id, payment.CodeBusy), nil
		}
	case *payment.BalanceUpdate:
		if id = m.Channel; !p.hasChannel(id) {
			return errorReply(id, payment.CodeUnknownChannel), nil
		}
	default:
		return nil, fmt.Errorf("router: payment message type %d from a client", m.Type())
	}
	reply, credit, err := p.m.cfg.Ledger.Handle(msg)
	if err != nil {
		return reply, nil
	}
	if _, ok := m.(*payment.ChannelOpen); ok {
		return reply, p.opened(reply)
	}
	p.credit(id, credit)
	return reply, nil
}

func errorReply(id payment.ChannelID, code payment.ErrorCode) []byte {
	b, _ := (&payment.ErrorReply{Channel: id, Code: code}).MarshalBinary()
	return b
}

func (p *paidCircuit) numChannels() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.channels)
}

func (p *paidCircuit) hasChannel(id payment.ChannelID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.channels[id]
	return ok
}

// opened records the channel an ACK of an open names.
func (p *paidCircuit) opened(ack []byte) error {
	m, err := payment.DecodeMessage(ack)
	if err != nil {
		return err
	}
	id := m.(*payment.Ack).Channel
	ch, ok := p.m.cfg.Ledger.Channel(id)
	if !ok {
		return errors.New("router: opened channel not in the ledger")
	}
	unit, err := msatPerUnit(ch.Params().Unit)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.channels[id] = unit
	if p.closed { // closed meanwhile: settle it with the others
		p.m.endChannels([]payment.ChannelID{id})
	}
	return nil
}

func msatPerUnit(unit string) (uint64, error) {
	switch unit {
	case "sat":
		return 1000, nil
	case "msat":
		return 1, nil
	}
	return 0, fmt.Errorf("router: no msat conversion for unit %q", unit)
}

// credit adds a verified balance increase and resumes the circuit if it is
// paid up.
func (p *paidCircuit) credit(id payment.ChannelID, units uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paid += units * p.channels[id]
	if p.unpaid && p.creditLocked() {
		p.unpaid = false
		p.grace.Stop()
		go p.ctl.Resume() // not under p.mu: Resume takes the circuit's lock
	}
}

// Close implements CircuitMeter.
func (p *paidCircuit) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	if p.grace != nil {
		p.grace.Stop()
	}
	ids := make([]payment.ChannelID, 0, len(p.channels))
	for id := range p.channels {
		ids = append(ids, id)
	}
	p.m.endChannels(ids)
}

func (m *PaidMeter) endChannels(ids []payment.ChannelID) {
	m.mu.Lock()
	m.ended = append(m.ended, ids...)
	m.mu.Unlock()
}
