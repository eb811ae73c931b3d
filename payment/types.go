package payment

// Proof is a NUT-00 proof (an unblinded mint signature on a secret), with the
// optional NUT-11 witness, NUT-12 DLEQ proof and NUT-28 ephemeral key. It is
// bearer money: never log it.
type Proof struct {
	Amount  uint64     `json:"amount"`
	ID      string     `json:"id"`
	Secret  string     `json:"secret"`
	C       string     `json:"C"`
	Witness string     `json:"witness,omitempty"`
	DLEQ    *DLEQProof `json:"dleq,omitempty"`
	P2PKE   string     `json:"p2pk_e,omitempty"`
}

// BlindedMessage is a NUT-00 output: an amount, a keyset and the blinded
// secret B_ (hex, compressed point).
type BlindedMessage struct {
	Amount uint64 `json:"amount"`
	ID     string `json:"id"`
	B      string `json:"B_"`
}

// BlindSignature is a NUT-00 promise: the mint's signature C_ on a
// BlindedMessage, with its NUT-12 DLEQ proof.
type BlindSignature struct {
	Amount uint64     `json:"amount"`
	ID     string     `json:"id"`
	C      string     `json:"C_"`
	DLEQ   *DLEQProof `json:"dleq,omitempty"`
}

// DLEQProof is a NUT-12 proof (hex scalars). R, the blinding factor, is only
// present in proofs passed from user to user.
type DLEQProof struct {
	E string `json:"e"`
	S string `json:"s"`
	R string `json:"r,omitempty"`
}
