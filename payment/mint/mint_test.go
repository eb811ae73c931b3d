package mint

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/obolnet/obol/payment"
)

// testClock is an injectable clock.
type testClock struct{ now time.Time }

func (c *testClock) Now() time.Time { return c.now }

// client talks to a mint over real HTTP on loopback.
type client struct {
	t    *testing.T
	base string
}

func startMint(t *testing.T, cfg Config) (*Mint, *client) {
	t.Helper()
	if cfg.Seed == nil {
		cfg.Seed = []byte("obol test mint seed, not secret")
	}
	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		m.Close()
	})
	return m, &client{t: t, base: "http://" + ln.Addr().String()}
}

// call does a request; a NUT-00 error comes back as *Error.
func (c *client) call(method, path string, req, resp any) error {
	c.t.Helper()
	var body bytes.Buffer
	if req != nil {
		json.NewEncoder(&body).Encode(req)
	}
	r, err := http.NewRequest(method, c.base+path, &body)
	if err != nil {
		c.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var e Error
		json.NewDecoder(res.Body).Decode(&e)
		return &e
	}
	return json.NewDecoder(res.Body).Decode(resp)
}

func code(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

// wallet holds what a test needs to unblind.
type pending struct {
	secret string
	r      *btcec.PrivateKey
	out    payment.BlindedMessage
}

func newOutputs(t *testing.T, ks payment.Keyset, amounts []uint64, secret func(i int) string) []pending {
	t.Helper()
	var ps []pending
	for i, a := range amounts {
		var rb [32]byte
		rand.Read(rb[:])
		r, _ := btcec.PrivKeyFromBytes(rb[:])
		s := hex.EncodeToString(rb[:16])
		if secret != nil {
			s = secret(i)
		}
		B, err := payment.BlindMessage(s, r)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, pending{secret: s, r: r, out: payment.BlindedMessage{Amount: a, ID: ks.ID, B: hex.EncodeToString(B.SerializeCompressed())}})
	}
	return ps
}

func outputsOf(ps []pending) []payment.BlindedMessage {
	out := make([]payment.BlindedMessage, len(ps))
	for i, p := range ps {
		out[i] = p.out
	}
	return out
}

func unblind(t *testing.T, ks payment.Keyset, ps []pending, sigs []payment.BlindSignature) []payment.Proof {
	t.Helper()
	if len(sigs) != len(ps) {
		t.Fatalf("%d signatures for %d outputs", len(sigs), len(ps))
	}
	proofs := make([]payment.Proof, len(ps))
	for i, p := range ps {
		A := ks.Keys[p.out.Amount]
		B, _ := parsePoint(p.out.B)
		if err := payment.VerifyBlindSignatureDLEQ(sigs[i], B, A); err != nil {
			t.Fatalf("DLEQ of signature %d: %v", i, err)
		}
		Cb, _ := parsePoint(sigs[i].C)
		C := payment.Unblind(Cb, p.r, A)
		proofs[i] = payment.Proof{Amount: p.out.Amount, ID: ks.ID, Secret: p.secret, C: hex.EncodeToString(C.SerializeCompressed())}
	}
	return proofs
}

// mintProofs mints amounts through a bolt11 quote over HTTP.
func mintProofs(t *testing.T, c *client, ks payment.Keyset, amounts []uint64) []payment.Proof {
	t.Helper()
	var total uint64
	for _, a := range amounts {
		total += a
	}
	var q payment.MintQuote
	if err := c.call("POST", "/v1/mint/quote/bolt11", map[string]any{"amount": total, "unit": ks.Unit}, &q); err != nil {
		t.Fatal(err)
	}
	if q.State != StatePaid {
		t.Fatalf("quote state %s", q.State)
	}
	ps := newOutputs(t, ks, amounts, nil)
	var resp struct {
		Signatures []payment.BlindSignature `json:"signatures"`
	}
	if err := c.call("POST", "/v1/mint/bolt11", map[string]any{"quote": q.Quote, "outputs": outputsOf(ps)}, &resp); err != nil {
		t.Fatal(err)
	}
	return unblind(t, ks, ps, resp.Signatures)
}

type sigsResp struct {
	Signatures []payment.BlindSignature `json:"signatures"`
}

func TestMintSwapAndState(t *testing.T) {
	m, c := startMint(t, Config{})
	ks, _ := m.ActiveKeyset("sat")
	var info map[string]any
	if err := c.call("GET", "/v1/info", nil, &info); err != nil || info["nuts"] == nil {
		t.Fatalf("info: %v", err)
	}
	var keys struct{ Keysets []KeysetKeys }
	if err := c.call("GET", "/v1/keys/"+ks.ID, nil, &keys); err != nil || len(keys.Keysets) != 1 || len(keys.Keysets[0].Keys) != 32 {
		t.Fatalf("keys: %v", err)
	}
	proofs := mintProofs(t, c, ks, []uint64{64, 32, 4})
	ps := newOutputs(t, ks, []uint64{64, 32, 2, 2}, nil)
	var resp sigsResp
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": proofs, "outputs": outputsOf(ps)}, &resp); err != nil {
		t.Fatal(err)
	}
	fresh := unblind(t, ks, ps, resp.Signatures)

	// Spent inputs, reused outputs and an unbalanced swap are refused.
	ps2 := newOutputs(t, ks, []uint64{64, 32, 4}, nil)
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": proofs, "outputs": outputsOf(ps2)}, &resp); code(err) != CodeSpent {
		t.Fatalf("double spend: %v", err)
	}
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": fresh, "outputs": outputsOf(ps)}, &resp); code(err) != CodeOutputSigned {
		t.Fatalf("reused outputs: %v", err)
	}
	ps3 := newOutputs(t, ks, []uint64{64, 32, 4, 1}, nil)
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": fresh, "outputs": outputsOf(ps3)}, &resp); code(err) != CodeUnbalanced {
		t.Fatalf("unbalanced: %v", err)
	}
	forged := append([]payment.Proof(nil), fresh...)
	forged[0].Secret = "forged"
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": forged, "outputs": outputsOf(ps2)}, &resp); code(err) != CodeProofInvalid {
		t.Fatalf("forged proof: %v", err)
	}

	// NUT-07 and NUT-09.
	Y, _ := payment.HashToCurve([]byte(proofs[0].Secret))
	var st struct{ States []payment.ProofState }
	if err := c.call("POST", "/v1/checkstate", map[string]any{"Ys": []string{hex.EncodeToString(Y.SerializeCompressed())}}, &st); err != nil || st.States[0].State != "SPENT" {
		t.Fatalf("checkstate: %v %+v", err, st)
	}
	var rs struct {
		Outputs    []payment.BlindedMessage `json:"outputs"`
		Signatures []payment.BlindSignature `json:"signatures"`
	}
	if err := c.call("POST", "/v1/restore", map[string]any{"outputs": append(outputsOf(ps), outputsOf(ps3)...)}, &rs); err != nil || len(rs.Signatures) != len(ps) {
		t.Fatalf("restore: %v, %d signatures", err, len(rs.Signatures))
	}
	if rs.Signatures[0].C != resp.Signatures[0].C && rs.Signatures[0].C == "" {
		t.Fatal("restore returned another signature")
	}
}

func TestMintP2PK(t *testing.T) {
	m, c := startMint(t, Config{})
	ks, _ := m.ActiveKeyset("sat")
	key, _ := btcec.NewPrivateKey()
	lock := func(int) string {
		var n [16]byte
		rand.Read(n[:])
		return payment.Secret{Kind: payment.KindP2PK, Nonce: hex.EncodeToString(n[:]), Data: hex.EncodeToString(key.PubKey().SerializeCompressed())}.String()
	}
	proofs := mintProofsWith(t, c, ks, []uint64{8}, lock)
	ps := newOutputs(t, ks, []uint64{8}, nil)
	var resp sigsResp
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": proofs, "outputs": outputsOf(ps)}, &resp); code(err) != CodeConditions {
		t.Fatalf("unsigned P2PK spend: %v", err)
	}
	sig, _ := payment.SignMessage(key, []byte(proofs[0].Secret))
	proofs[0].Witness = payment.Witness{Signatures: []string{sig}}.String()
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": proofs, "outputs": outputsOf(ps)}, &resp); err != nil {
		t.Fatalf("signed P2PK spend: %v", err)
	}
}

// mintProofsWith mints to outputs with given secrets: it mints plain
// proofs, then swaps them to the locked outputs.
func mintProofsWith(t *testing.T, c *client, ks payment.Keyset, amounts []uint64, secret func(int) string) []payment.Proof {
	t.Helper()
	plain := mintProofs(t, c, ks, amounts)
	ps := newOutputs(t, ks, amounts, secret)
	var resp sigsResp
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": plain, "outputs": outputsOf(ps)}, &resp); err != nil {
		t.Fatal(err)
	}
	return unblind(t, ks, ps, resp.Signatures)
}

func TestMintMeltAndHeldQuotes(t *testing.T) {
	m, c := startMint(t, Config{HoldInvoices: true})
	ks, _ := m.ActiveKeyset("sat")
	var held payment.MintQuote
	if err := c.call("POST", "/v1/mint/quote/bolt11", map[string]any{"amount": 10, "unit": "sat"}, &held); err != nil || held.State != StateUnpaid {
		t.Fatalf("held quote: %v %s", err, held.State)
	}
	ps := newOutputs(t, ks, []uint64{8, 2}, nil)
	var resp sigsResp
	if err := c.call("POST", "/v1/mint/bolt11", map[string]any{"quote": held.Quote, "outputs": outputsOf(ps)}, &resp); code(err) != CodeQuoteNotPaid {
		t.Fatalf("mint unpaid: %v", err)
	}
	// Pay the held invoice by melting other ecash into it.
	var other payment.MintQuote
	c.call("POST", "/v1/mint/quote/bolt11", map[string]any{"amount": 16, "unit": "sat"}, &other)
	m.PayMintQuote(other.Quote)
	pso := newOutputs(t, ks, []uint64{16}, nil)
	if err := c.call("POST", "/v1/mint/bolt11", map[string]any{"quote": other.Quote, "outputs": outputsOf(pso)}, &resp); err != nil {
		t.Fatal(err)
	}
	funds := unblind(t, ks, pso, resp.Signatures)
	var mq payment.MeltQuote
	if err := c.call("POST", "/v1/melt/quote/bolt11", map[string]any{"request": held.Request, "unit": "sat"}, &mq); err != nil || mq.Amount != 10 {
		t.Fatalf("melt quote: %v %d", err, mq.Amount)
	}
	blanks := newOutputs(t, ks, []uint64{1, 1, 1}, nil)
	var paid payment.MeltQuote
	if err := c.call("POST", "/v1/melt/bolt11", map[string]any{"quote": mq.Quote, "inputs": funds, "outputs": outputsOf(blanks)}, &paid); err != nil || paid.State != StatePaid {
		t.Fatalf("melt: %v %+v", err, paid)
	}
	var change uint64
	for _, s := range paid.Change {
		change += s.Amount
	}
	if change != 6 {
		t.Fatalf("change %d, want 6", change)
	}
	var q payment.MintQuote
	if c.call("GET", "/v1/mint/quote/bolt11/"+held.Quote, nil, &q); q.State != StatePaid {
		t.Fatalf("internal settlement: %s", q.State)
	}
	if err := c.call("POST", "/v1/mint/bolt11", map[string]any{"quote": held.Quote, "outputs": outputsOf(ps)}, &resp); err != nil {
		t.Fatalf("mint after payment: %v", err)
	}
	if err := c.call("POST", "/v1/mint/bolt11", map[string]any{"quote": held.Quote, "outputs": outputsOf(newOutputs(t, ks, []uint64{8, 2}, nil))}, &resp); code(err) != CodeQuoteIssued {
		t.Fatalf("mint twice: %v", err)
	}
}

func TestMintMsatKeyset(t *testing.T) {
	m, c := startMint(t, Config{})
	ks, ok := m.ActiveKeyset("msat")
	if !ok || len(ks.Keys) != 42 {
		t.Fatal("no msat keyset")
	}
	proofs := mintProofs(t, c, ks, []uint64{1024, 512, 1})
	if len(proofs) != 3 {
		t.Fatal("msat mint")
	}
}

func TestMintPersistence(t *testing.T) {
	dir := t.TempDir()
	m, c := startMint(t, Config{Dir: dir})
	ks, _ := m.ActiveKeyset("sat")
	proofs := mintProofs(t, c, ks, []uint64{4})
	ps := newOutputs(t, ks, []uint64{4}, nil)
	var resp sigsResp
	if err := c.call("POST", "/v1/swap", map[string]any{"inputs": proofs, "outputs": outputsOf(ps)}, &resp); err != nil {
		t.Fatal(err)
	}
	m.Close()
	// A torn record at the end (a crash mid-write) is dropped.
	f, _ := os.OpenFile(filepath.Join(dir, "journal.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprint(f, `{"spent":{"02`)
	f.Close()
	m2, err := Open(Config{Seed: []byte("obol test mint seed, not secret"), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	ps2 := newOutputs(t, ks, []uint64{4}, nil)
	if _, err := m2.Swap(proofs, outputsOf(ps2)); code(err) != CodeSpent {
		t.Fatalf("spend after restart: %v", err)
	}
	outs, sigs, _ := m2.Restore(outputsOf(ps))
	if len(outs) != 1 || sigs[0].C != resp.Signatures[0].C {
		t.Fatal("promise lost across restart")
	}
}

func TestInvoiceAmount(t *testing.T) {
	for in, want := range map[string]uint64{
		"lnbc2500u1pvjluez": 250_000_000, "lnbcrt10p1qq": 1, "lnbc1m1x": 100_000_000,
		"lntb20n1x": 2000, "lnbc11qq": 100_000_000_000,
	} {
		if got, err := InvoiceAmountMsat(in); err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lnbc1x", "lnbc15p1x", "bc1qxyz", "lnbc99999999999999999999m1x"} {
		if _, err := InvoiceAmountMsat(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func FuzzInvoiceAmount(f *testing.F) {
	for _, s := range []string{"lnbc2500u1pvjluez", "lnbcrt10p1qq", "lntb20n1x", "lnbc11qq"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := InvoiceAmountMsat(s); err == nil && (v == 0 || v > 1<<60) {
			t.Fatalf("%q: amount %d", s, v)
		}
	})
}
