package mint

import (
	"encoding/hex"
	"math/bits"
	"sort"
	"strconv"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
)

// Request limits.
const (
	maxInputs  = 1000
	maxOutputs = 1000
)

// KeysetKeys is a NUT-01 keyset with its public keys.
type KeysetKeys struct {
	ID          string            `json:"id"`
	Unit        string            `json:"unit"`
	Active      bool              `json:"active"`
	InputFeePPK uint64            `json:"input_fee_ppk"`
	Keys        map[string]string `json:"keys"`
}

// Keysets lists every keyset (NUT-02).
func (m *Mint) Keysets() []payment.KeysetInfo {
	out := make([]payment.KeysetInfo, 0, len(m.keysets))
	for _, ks := range m.sortedKeysets() {
		out = append(out, payment.KeysetInfo{ID: ks.ID, Unit: ks.Unit, Active: ks.active, InputFeePPK: ks.InputFeePPK})
	}
	return out
}

func (m *Mint) sortedKeysets() []*keyset {
	out := make([]*keyset, 0, len(m.keysets))
	for _, ks := range m.keysets {
		out = append(out, ks)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Keys returns the active keysets' keys (id empty) or one keyset's (NUT-01).
func (m *Mint) Keys(id string) ([]KeysetKeys, error) {
	var out []KeysetKeys
	for _, ks := range m.sortedKeysets() {
		if (id == "" && ks.active) || ks.ID == id {
			keys := make(map[string]string, len(ks.Keys))
			for a, k := range ks.Keys {
				keys[strconv.FormatUint(a, 10)] = hex.EncodeToString(k.SerializeCompressed())
			}
			out = append(out, KeysetKeys{ID: ks.ID, Unit: ks.Unit, Active: ks.active, InputFeePPK: ks.InputFeePPK, Keys: keys})
		}
	}
	if id != "" && len(out) == 0 {
		return nil, mintErr(CodeKeysetUnknown, "keyset not known")
	}
	return out, nil
}

// Info is the NUT-06 mint information.
func (m *Mint) Info() map[string]any {
	var methods []map[string]any
	for _, u := range m.cfg.Units {
		if _, err := msatOf(1, u.Unit); err == nil {
			methods = append(methods, map[string]any{"method": "bolt11", "unit": u.Unit})
		}
	}
	supported := map[string]bool{"supported": true}
	return map[string]any{
		"name":    m.cfg.Name,
		"pubkey":  hex.EncodeToString(m.infoKey.SerializeCompressed()),
		"version": "obol-testmint/0.1",
		"time":    m.cfg.Now().Unix(),
		"nuts": map[string]any{
			"4":  map[string]any{"methods": methods, "disabled": false},
			"5":  map[string]any{"methods": methods, "disabled": false},
			"7":  supported,
			"8":  supported,
			"9":  supported,
			"10": supported,
			"11": supported,
			"12": supported,
		},
	}
}

// CreateMintQuote issues a bolt11 invoice for an amount of a unit. Unless
// the mint holds invoices, the fake backend pays it at once.
func (m *Mint) CreateMintQuote(amount uint64, unit string) (*payment.MintQuote, error) {
	if _, ok := m.active[unit]; !ok {
		return nil, mintErr(CodeUnitUnsupported, "unit not supported")
	}
	msat, err := msatOf(amount, unit)
	if err != nil {
		return nil, err
	}
	if amount == 0 {
		return nil, mintErr(CodeAmountOutOfRange, "amount must be positive")
	}
	inv, _, err := m.ln.CreateInvoice(msat)
	if err != nil {
		return nil, err
	}
	id, err := m.newQuoteID()
	if err != nil {
		return nil, err
	}
	q := &payment.MintQuote{Quote: id, Request: inv, Amount: amount, Unit: unit, State: StatePaid,
		Expiry: m.cfg.Now().Add(m.cfg.QuoteExpiry).Unix()}
	if m.cfg.HoldInvoices {
		q.State = StateUnpaid
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.commit(&record{MintQuote: q}); err != nil {
		return nil, err
	}
	c := *q
	return &c, nil
}

// PayMintQuote marks a held mint quote paid, as if its invoice had been
// paid.
func (m *Mint) PayMintQuote(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.payMintQuote(id)
}

func (m *Mint) payMintQuote(id string) error {
	q, ok := m.st.mintQuotes[id]
	if !ok {
		return mintErr(CodeBadRequest, "unknown quote")
	}
	if q.State != StateUnpaid {
		return nil
	}
	c := *q
	c.State = StatePaid
	return m.commit(&record{MintQuote: &c})
}

// MintQuoteState returns a mint quote.
func (m *Mint) MintQuoteState(id string) (*payment.MintQuote, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q, ok := m.st.mintQuotes[id]
	if !ok {
		return nil, mintErr(CodeBadRequest, "unknown quote")
	}
	c := *q
	return &c, nil
}

// MintTokens signs outputs for a paid mint quote (NUT-04).
func (m *Mint) MintTokens(quote string, outputs []payment.BlindedMessage) ([]payment.BlindSignature, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q, ok := m.st.mintQuotes[quote]
	switch {
	case !ok:
		return nil, mintErr(CodeBadRequest, "unknown quote")
	case q.State == StateIssued:
		return nil, mintErr(CodeQuoteIssued, "quote already issued")
	case q.State != StatePaid:
		return nil, mintErr(CodeQuoteNotPaid, "quote not paid")
	}
	sigs, total, unit, err := m.signOutputs(outputs)
	if err != nil {
		return nil, err
	}
	if unit != q.Unit || total != q.Amount {
		return nil, mintErr(CodeUnbalanced, "outputs do not match the quote")
	}
	issued := *q
	issued.State = StateIssued
	if err := m.commit(&record{MintQuote: &issued, Promises: promisesOf(outputs, sigs)}); err != nil {
		return nil, err
	}
	return sigs, nil
}

// Swap exchanges proofs for new signatures (NUT-03), enforcing spending
// conditions (NUT-10/11) with the merged SIG_ALL rules.
func (m *Mint) Swap(inputs []payment.Proof, outputs []payment.BlindedMessage) ([]payment.BlindSignature, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in, err := m.verifyInputs(inputs)
	if err != nil {
		return nil, err
	}
	if err := payment.VerifySwap(inputs, outputs, m.cfg.Now()); err != nil {
		return nil, mintErr(CodeConditions, "spending conditions not met")
	}
	sigs, total, unit, err := m.signOutputs(outputs)
	if err != nil {
		return nil, err
	}
	if unit != in.unit {
		return nil, mintErr(CodeMixedUnits, "inputs and outputs of different units")
	}
	if in.fee > in.total || in.total-in.fee != total {
		return nil, mintErr(CodeUnbalanced, "inputs minus fees do not equal outputs")
	}
	if err := m.commit(&record{Spent: in.spent, Promises: promisesOf(outputs, sigs)}); err != nil {
		return nil, err
	}
	m.addFee(in)
	return sigs, nil
}

// addFee counts the input fees an operation collected; m.mu is held.
func (m *Mint) addFee(in *inputSet) {
	if m.fees == nil {
		m.fees = map[string]uint64{}
	}
	m.fees[in.unit] += in.fee
}

// FeesCollected is what swaps and melts took in input fees (NUT-02) since
// Open, in unit: what wallets paid the mint, for accounting checks.
func (m *Mint) FeesCollected(unit string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fees[unit]
}

// inputSet is a verified set of inputs.
type inputSet struct {
	unit       string
	total, fee uint64
	spent      map[string]string // Y -> witness
}

// verifyInputs checks the mint's signature on every input, that none is
// spent or repeated, and that they share a unit; m.mu is held.
func (m *Mint) verifyInputs(inputs []payment.Proof) (*inputSet, error) {
	if len(inputs) == 0 || len(inputs) > maxInputs {
		return nil, mintErr(CodeBadRequest, "bad number of inputs")
	}
	in := &inputSet{spent: make(map[string]string, len(inputs))}
	var ppk uint64
	for i, p := range inputs {
		ks, ok := m.keysets[p.ID]
		if !ok {
			return nil, mintErr(CodeKeysetUnknown, "input %d: keyset not known", i)
		}
		if in.unit == "" {
			in.unit = ks.Unit
		} else if in.unit != ks.Unit {
			return nil, mintErr(CodeMixedUnits, "inputs of different units")
		}
		k, ok := ks.priv[p.Amount]
		if !ok || len(p.Secret) > payment.MaxSecretLen {
			return nil, mintErr(CodeProofInvalid, "input %d: bad amount or secret", i)
		}
		C, err := parsePoint(p.C)
		if err != nil || !payment.VerifyUnblinded(p.Secret, k, C) {
			return nil, mintErr(CodeProofInvalid, "input %d: proof does not verify", i)
		}
		Y, _ := payment.HashToCurve([]byte(p.Secret)) // verified above
		y := hex.EncodeToString(Y.SerializeCompressed())
		if _, dup := in.spent[y]; dup {
			return nil, mintErr(CodeDuplicateInputs, "duplicate inputs")
		}
		if _, spent := m.st.spent[y]; spent {
			return nil, mintErr(CodeSpent, "input %d already spent", i)
		}
		in.spent[y] = p.Witness
		var carry uint64
		in.total, carry = bits.Add64(in.total, p.Amount, 0)
		if carry != 0 {
			return nil, mintErr(CodeAmountOutOfRange, "input total overflows")
		}
		ppk += ks.InputFeePPK
	}
	in.fee = fee(ppk)
	return in, nil
}

// signOutputs checks outputs (active keyset, one unit, known amounts, not
// repeated, never signed before) and signs them with DLEQ proofs; m.mu is
// held. Nothing is recorded.
func (m *Mint) signOutputs(outputs []payment.BlindedMessage) ([]payment.BlindSignature, uint64, string, error) {
	if len(outputs) == 0 || len(outputs) > maxOutputs {
		return nil, 0, "", mintErr(CodeBadRequest, "bad number of outputs")
	}
	sigs := make([]payment.BlindSignature, len(outputs))
	seen := make(map[string]bool, len(outputs))
	var total uint64
	unit := ""
	for i, o := range outputs {
		ks, ok := m.keysets[o.ID]
		switch {
		case !ok:
			return nil, 0, "", mintErr(CodeKeysetUnknown, "output %d: keyset not known", i)
		case !ks.active:
			return nil, 0, "", mintErr(CodeKeysetInactive, "output %d: keyset inactive", i)
		case unit != "" && unit != ks.Unit:
			return nil, 0, "", mintErr(CodeMixedUnits, "outputs of different units")
		}
		unit = ks.Unit
		sig, err := m.signOne(ks, o, seen)
		if err != nil {
			e := err.(*Error)
			return nil, 0, "", mintErr(e.Code, "output %d: %s", i, e.Detail)
		}
		sigs[i] = sig
		var carry uint64
		if total, carry = bits.Add64(total, o.Amount, 0); carry != 0 {
			return nil, 0, "", mintErr(CodeAmountOutOfRange, "output total overflows")
		}
	}
	return sigs, total, unit, nil
}

func (m *Mint) signOne(ks *keyset, o payment.BlindedMessage, seen map[string]bool) (payment.BlindSignature, error) {
	k, ok := ks.priv[o.Amount]
	if !ok {
		return payment.BlindSignature{}, mintErr(CodeAmountOutOfRange, "amount not in keyset")
	}
	B, err := parsePoint(o.B)
	if err != nil {
		return payment.BlindSignature{}, mintErr(CodeBadRequest, "B_ is not a point")
	}
	b := hex.EncodeToString(B.SerializeCompressed())
	if _, signed := m.st.promises[b]; signed || seen[b] {
		return payment.BlindSignature{}, mintErr(CodeOutputSigned, "output already signed")
	}
	seen[b] = true
	C := payment.SignBlinded(B, k)
	e, s, err := payment.GenerateDLEQ(k, B, C)
	if err != nil {
		return payment.BlindSignature{}, mintErr(CodeBadRequest, "DLEQ failed")
	}
	return payment.BlindSignature{
		Amount: o.Amount, ID: ks.ID, C: hex.EncodeToString(C.SerializeCompressed()),
		DLEQ: &payment.DLEQProof{E: hex.EncodeToString(e[:]), S: hex.EncodeToString(s[:])},
	}, nil
}

func promisesOf(outputs []payment.BlindedMessage, sigs []payment.BlindSignature) map[string]payment.BlindSignature {
	p := make(map[string]payment.BlindSignature, len(outputs))
	for i, o := range outputs {
		B, _ := parsePoint(o.B) // parsed when signed
		p[hex.EncodeToString(B.SerializeCompressed())] = sigs[i]
	}
	return p
}

func parsePoint(h string) (*btcec.PublicKey, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != btcec.PubKeyBytesLenCompressed {
		return nil, mintErr(CodeBadRequest, "bad point")
	}
	return btcec.ParsePubKey(b)
}

// CheckState reports whether proofs, named by Y = hash_to_curve(secret),
// are spent (NUT-07).
func (m *Mint) CheckState(ys []string) ([]payment.ProofState, error) {
	if len(ys) > maxInputs {
		return nil, mintErr(CodeBadRequest, "too many Ys")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]payment.ProofState, len(ys))
	for i, y := range ys {
		out[i] = payment.ProofState{Y: y, State: "UNSPENT"}
		if P, err := parsePoint(y); err == nil {
			if w, ok := m.st.spent[hex.EncodeToString(P.SerializeCompressed())]; ok {
				out[i].State = "SPENT"
				if w != "" {
					out[i].Witness = &w
				}
			}
		}
	}
	return out, nil
}

// Restore returns the signatures the mint gave to any of outputs (NUT-09),
// with the outputs they belong to.
func (m *Mint) Restore(outputs []payment.BlindedMessage) ([]payment.BlindedMessage, []payment.BlindSignature, error) {
	if len(outputs) > maxOutputs {
		return nil, nil, mintErr(CodeBadRequest, "too many outputs")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	outs, sigs := []payment.BlindedMessage{}, []payment.BlindSignature{}
	for _, o := range outputs {
		B, err := parsePoint(o.B)
		if err != nil {
			continue
		}
		if sig, ok := m.st.promises[hex.EncodeToString(B.SerializeCompressed())]; ok {
			outs, sigs = append(outs, o), append(sigs, sig)
		}
	}
	return outs, sigs, nil
}
