package mint

import (
	"github.com/obolnet/obol/payment"
)

// CreateMeltQuote quotes paying a bolt11 invoice from ecash of a unit
// (NUT-05). The fake backend charges no routing fee.
func (m *Mint) CreateMeltQuote(request, unit string) (*payment.MeltQuote, error) {
	if _, ok := m.active[unit]; !ok {
		return nil, mintErr(CodeUnitUnsupported, "unit not supported")
	}
	msat, err := InvoiceAmountMsat(request)
	if err != nil {
		return nil, mintErr(CodeBadRequest, "invoice amount unreadable")
	}
	amount := msat
	if unit == "sat" {
		amount = (msat + 999) / 1000
	} else if _, err := msatOf(1, unit); err != nil {
		return nil, err
	}
	id, err := m.newQuoteID()
	if err != nil {
		return nil, err
	}
	q := &payment.MeltQuote{Quote: id, Request: request, Amount: amount, Unit: unit, State: StateUnpaid,
		Expiry: m.cfg.Now().Add(m.cfg.QuoteExpiry).Unix()}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.commit(&record{MeltQuote: q}); err != nil {
		return nil, err
	}
	c := *q
	return &c, nil
}

// MeltQuoteState returns a melt quote.
func (m *Mint) MeltQuoteState(id string) (*payment.MeltQuote, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q, ok := m.st.meltQuotes[id]
	if !ok {
		return nil, mintErr(CodeBadRequest, "unknown quote")
	}
	c := *q
	return &c, nil
}

// Melt pays a melt quote with inputs (NUT-05), returning change for any
// overpayment on the blank outputs (NUT-08). An invoice of this mint's own
// mint quotes is settled internally.
func (m *Mint) Melt(quote string, inputs []payment.Proof, outputs []payment.BlindedMessage) (*payment.MeltQuote, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q, ok := m.st.meltQuotes[quote]
	switch {
	case !ok:
		return nil, mintErr(CodeBadRequest, "unknown quote")
	case q.State == StatePaid:
		return nil, mintErr(CodeInvoicePaid, "quote already paid")
	case m.cfg.Now().Unix() > q.Expiry:
		return nil, mintErr(CodeQuoteExpired, "quote expired")
	}
	in, err := m.verifyInputs(inputs)
	if err != nil {
		return nil, err
	}
	if in.unit != q.Unit {
		return nil, mintErr(CodeMixedUnits, "inputs not in the quote's unit")
	}
	if err := payment.VerifyMelt(inputs, outputs, quote, m.cfg.Now()); err != nil {
		return nil, mintErr(CodeConditions, "spending conditions not met")
	}
	need := q.Amount + q.FeeReserve
	if in.total < in.fee || in.total-in.fee < need {
		return nil, mintErr(CodeUnbalanced, "inputs do not cover amount and fees")
	}
	change, promises, err := m.change(in.total-in.fee-need, outputs)
	if err != nil {
		return nil, err
	}
	pre, err := m.ln.Pay(q.Request)
	if err != nil {
		return nil, mintErr(CodeBadRequest, "payment failed")
	}
	paid := *q
	paid.State, paid.Preimage, paid.Change = StatePaid, &pre, change
	rec := &record{Spent: in.spent, Promises: promises, MeltQuote: &paid}
	if err := m.commit(rec); err != nil {
		return nil, err
	}
	m.addFee(in)
	m.settleInternal(q.Request)
	c := paid
	return &c, nil
}

// change signs the overpayment onto blank outputs, in powers of two.
func (m *Mint) change(over uint64, blanks []payment.BlindedMessage) ([]payment.BlindSignature, map[string]payment.BlindSignature, error) {
	amounts := payment.PowersOfTwo(over)
	if over == 0 || len(blanks) == 0 {
		return nil, nil, nil
	}
	if len(amounts) > len(blanks) {
		amounts = amounts[len(amounts)-len(blanks):] // keep the largest
	}
	outs := make([]payment.BlindedMessage, len(amounts))
	for i, a := range amounts {
		outs[i] = blanks[i]
		outs[i].Amount = a
	}
	sigs, _, _, err := m.signOutputs(outs)
	if err != nil {
		return nil, nil, err
	}
	return sigs, promisesOf(outs, sigs), nil
}

// settleInternal marks a held mint quote of this mint paid when its
// invoice was melted here; m.mu is held.
func (m *Mint) settleInternal(invoice string) {
	for id, q := range m.st.mintQuotes {
		if q.Request == invoice && q.State == StateUnpaid {
			m.payMintQuote(id) // journal errors surface on the next commit
			return
		}
	}
}
