package wallet

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
)

// MintError is a NUT-00 error answer: the mint refused the request, so it
// did nothing with it.
type MintError struct {
	Code   int    `json:"code"`
	Detail string `json:"detail"`
}

func (e *MintError) Error() string {
	return fmt.Sprintf("wallet: mint refused: %s (code %d)", e.Detail, e.Code)
}

// MintClient is an HTTP client of a Cashu mint. Every method takes a context
// and may be cancelled.
type MintClient struct {
	base string
	hc   *http.Client
}

// NewMintClient returns a client of the mint at baseURL (hc nil:
// http.DefaultClient).
func NewMintClient(baseURL string, hc *http.Client) *MintClient {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &MintClient{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// maxResponse bounds a mint's answer.
const maxResponse = 8 << 20

func (c *MintClient) do(ctx context.Context, method, path string, req, resp any) error {
	var body io.Reader
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("wallet: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("wallet: request: %w", err)
	}
	r.Header.Set("Content-Type", "application/json")
	res, err := c.hc.Do(r)
	if err != nil {
		return fmt.Errorf("wallet: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("wallet: read answer: %w", err)
	}
	if res.StatusCode == http.StatusBadRequest {
		var e MintError
		if json.Unmarshal(data, &e) == nil && e.Code != 0 {
			return &e
		}
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("wallet: %s %s: HTTP %d", method, path, res.StatusCode)
	}
	if err := json.Unmarshal(data, resp); err != nil {
		return fmt.Errorf("wallet: decode answer of %s: %w", path, err)
	}
	return nil
}

// Keysets lists the mint's keysets.
func (c *MintClient) Keysets(ctx context.Context) ([]payment.KeysetInfo, error) {
	var r struct{ Keysets []payment.KeysetInfo }
	err := c.do(ctx, "GET", "/v1/keysets", nil, &r)
	return r.Keysets, err
}

// Keys fetches a keyset's keys and checks that they hash to its id.
func (c *MintClient) Keys(ctx context.Context, info payment.KeysetInfo) (payment.Keyset, error) {
	var r struct {
		Keysets []struct {
			ID   string            `json:"id"`
			Keys map[string]string `json:"keys"`
		}
	}
	if err := c.do(ctx, "GET", "/v1/keys/"+info.ID, nil, &r); err != nil {
		return payment.Keyset{}, err
	}
	if len(r.Keysets) != 1 || r.Keysets[0].ID != info.ID {
		return payment.Keyset{}, errors.New("wallet: mint answered with another keyset")
	}
	ks := payment.Keyset{ID: info.ID, Unit: info.Unit, InputFeePPK: info.InputFeePPK, Keys: map[uint64]*btcec.PublicKey{}}
	for a, h := range r.Keysets[0].Keys {
		amt, err := strconv.ParseUint(a, 10, 64)
		b, herr := hex.DecodeString(h)
		if err != nil || herr != nil {
			return payment.Keyset{}, errors.New("wallet: malformed key in keyset")
		}
		k, err := btcec.ParsePubKey(b)
		if err != nil {
			return payment.Keyset{}, errors.New("wallet: malformed key in keyset")
		}
		ks.Keys[amt] = k
	}
	id := payment.KeysetIDV2(ks.Keys, ks.Unit, ks.InputFeePPK, 0)
	if strings.HasPrefix(info.ID, "00") {
		id = payment.KeysetIDV1(ks.Keys)
	}
	if id != info.ID {
		return payment.Keyset{}, errors.New("wallet: keyset id does not match its keys")
	}
	return ks, nil
}

// CreateMintQuote asks for an invoice of amount.
func (c *MintClient) CreateMintQuote(ctx context.Context, amount uint64, unit string) (*payment.MintQuote, error) {
	var q payment.MintQuote
	err := c.do(ctx, "POST", "/v1/mint/quote/bolt11", map[string]any{"amount": amount, "unit": unit}, &q)
	return &q, err
}

// MintQuoteState fetches a mint quote.
func (c *MintClient) MintQuoteState(ctx context.Context, id string) (*payment.MintQuote, error) {
	var q payment.MintQuote
	err := c.do(ctx, "GET", "/v1/mint/quote/bolt11/"+id, nil, &q)
	return &q, err
}

// Mint has the mint sign outputs for a paid quote.
func (c *MintClient) Mint(ctx context.Context, quote string, outputs []payment.BlindedMessage) ([]payment.BlindSignature, error) {
	var r struct{ Signatures []payment.BlindSignature }
	err := c.do(ctx, "POST", "/v1/mint/bolt11", map[string]any{"quote": quote, "outputs": outputs}, &r)
	return r.Signatures, err
}

// Swap exchanges inputs for signatures on outputs.
func (c *MintClient) Swap(ctx context.Context, inputs []payment.Proof, outputs []payment.BlindedMessage) ([]payment.BlindSignature, error) {
	var r struct{ Signatures []payment.BlindSignature }
	err := c.do(ctx, "POST", "/v1/swap", map[string]any{"inputs": inputs, "outputs": outputs}, &r)
	return r.Signatures, err
}

// CreateMeltQuote quotes paying an invoice.
func (c *MintClient) CreateMeltQuote(ctx context.Context, invoice, unit string) (*payment.MeltQuote, error) {
	var q payment.MeltQuote
	err := c.do(ctx, "POST", "/v1/melt/quote/bolt11", map[string]any{"request": invoice, "unit": unit}, &q)
	return &q, err
}

// Melt pays a melt quote with inputs; blank outputs receive the change.
func (c *MintClient) Melt(ctx context.Context, quote string, inputs []payment.Proof, outputs []payment.BlindedMessage) (*payment.MeltQuote, error) {
	var q payment.MeltQuote
	err := c.do(ctx, "POST", "/v1/melt/bolt11", map[string]any{"quote": quote, "inputs": inputs, "outputs": outputs}, &q)
	return &q, err
}

// CheckState asks whether proofs (by Y) are spent.
func (c *MintClient) CheckState(ctx context.Context, ys []string) ([]payment.ProofState, error) {
	var r struct{ States []payment.ProofState }
	err := c.do(ctx, "POST", "/v1/checkstate", map[string]any{"Ys": ys}, &r)
	return r.States, err
}

// Restore asks for the signatures the mint gave to outputs (NUT-09).
func (c *MintClient) Restore(ctx context.Context, outputs []payment.BlindedMessage) ([]payment.BlindedMessage, []payment.BlindSignature, error) {
	var r struct {
		Outputs    []payment.BlindedMessage `json:"outputs"`
		Signatures []payment.BlindSignature `json:"signatures"`
	}
	err := c.do(ctx, "POST", "/v1/restore", map[string]any{"outputs": outputs}, &r)
	return r.Outputs, r.Signatures, err
}
