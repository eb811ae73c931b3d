package mint

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
)

// ErrInvoice: a bolt11 string whose amount cannot be read.
var ErrInvoice = errors.New("mint: unreadable bolt11 invoice")

// FakeLightning is the test mint's Lightning backend. Invoices it issues
// look like regtest bolt11 strings (amount in the human-readable part, a
// random payment hash as data) but are not signed; it "pays" any invoice
// whose amount it can read, settling its own invoices.
type FakeLightning struct {
	mu   sync.Mutex // guards paid
	paid map[string]bool
}

// NewFakeLightning returns an empty backend.
func NewFakeLightning() *FakeLightning {
	return &FakeLightning{paid: map[string]bool{}}
}

const bech32Chars = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// CreateInvoice returns a new invoice for an amount and its payment hash.
func (l *FakeLightning) CreateInvoice(amountMsat uint64) (bolt11, hash string, err error) {
	var pre [32]byte
	if _, err := rand.Read(pre[:]); err != nil {
		return "", "", fmt.Errorf("mint: invoice randomness: %w", err)
	}
	h := sha256.Sum256(pre[:])
	var data strings.Builder
	for _, b := range h {
		data.WriteByte(bech32Chars[b&31])
		data.WriteByte(bech32Chars[b>>5])
	}
	return "lnbcrt" + strconv.FormatUint(amountMsat*10, 10) + "p1" + data.String(), hex.EncodeToString(h[:]), nil
}

// Pay pays an invoice, returning a preimage; its own invoices become paid.
func (l *FakeLightning) Pay(bolt11 string) (preimage string, err error) {
	if _, err := InvoiceAmountMsat(bolt11); err != nil {
		return "", err
	}
	l.mu.Lock()
	l.paid[bolt11] = true
	l.mu.Unlock()
	var pre [32]byte
	rand.Read(pre[:])
	return hex.EncodeToString(pre[:]), nil
}

// Paid reports whether an invoice was paid through Pay.
func (l *FakeLightning) Paid(bolt11 string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paid[bolt11]
}

// InvoiceAmountMsat reads the amount of a bolt11 invoice from its
// human-readable part (ln + currency + amount + multiplier), without
// checking its signature.
func InvoiceAmountMsat(bolt11 string) (uint64, error) {
	s := strings.ToLower(bolt11)
	sep := strings.LastIndexByte(s, '1')
	if !strings.HasPrefix(s, "ln") || sep < 0 {
		return 0, ErrInvoice
	}
	hrp := s[2:sep]
	i := strings.IndexAny(hrp, "0123456789")
	if i < 0 {
		return 0, fmt.Errorf("%w: no amount", ErrInvoice)
	}
	num := hrp[i:]
	mult := byte(0)
	if c := num[len(num)-1]; c < '0' || c > '9' {
		mult, num = c, num[:len(num)-1]
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil || v == 0 || v > 1<<50 {
		return 0, fmt.Errorf("%w: amount", ErrInvoice)
	}
	if mult == 'p' {
		if v%10 != 0 {
			return 0, fmt.Errorf("%w: sub-msat amount", ErrInvoice)
		}
		return v / 10, nil
	}
	factor, ok := map[byte]uint64{0: 100_000_000_000, 'm': 100_000_000, 'u': 100_000, 'n': 100}[mult]
	if !ok {
		return 0, fmt.Errorf("%w: multiplier", ErrInvoice)
	}
	if hi, lo := bits.Mul64(v, factor); hi != 0 || lo > 1<<60 {
		return 0, fmt.Errorf("%w: amount too large", ErrInvoice)
	}
	return v * factor, nil
}
