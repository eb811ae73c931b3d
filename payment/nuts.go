package payment

// NUT-02, NUT-04, NUT-05 and NUT-07 objects shared by the mint and the
// wallet.

// KeysetInfo is a NUT-02 keyset entry.
type KeysetInfo struct {
	ID          string `json:"id"`
	Unit        string `json:"unit"`
	Active      bool   `json:"active"`
	InputFeePPK uint64 `json:"input_fee_ppk"`
}

// MintQuote is a NUT-04 bolt11 mint quote.
type MintQuote struct {
	Quote   string `json:"quote"`
	Request string `json:"request"`
	Amount  uint64 `json:"amount"`
	Unit    string `json:"unit"`
	State   string `json:"state"`
	Expiry  int64  `json:"expiry"`
}

// MeltQuote is a NUT-05 bolt11 melt quote.
type MeltQuote struct {
	Quote      string           `json:"quote"`
	Request    string           `json:"request"`
	Amount     uint64           `json:"amount"`
	FeeReserve uint64           `json:"fee_reserve"`
	Unit       string           `json:"unit"`
	State      string           `json:"state"`
	Expiry     int64            `json:"expiry"`
	Preimage   *string          `json:"payment_preimage"`
	Change     []BlindSignature `json:"change,omitempty"`
}

// ProofState is a NUT-07 state.
type ProofState struct {
	Y       string  `json:"Y"`
	State   string  `json:"state"`
	Witness *string `json:"witness"`
}
