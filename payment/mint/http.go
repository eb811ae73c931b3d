package mint

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/obolnet/obol/payment"
)

// maxBody bounds request bodies.
const maxBody = 1 << 20

// Handler serves the mint's HTTP API (NUT-01…07, 09).
func (m *Mint) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) { reply(w, m.Info(), nil) })
	mux.HandleFunc("GET /v1/keysets", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{"keysets": m.Keysets()}, nil)
	})
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		ks, err := m.Keys("")
		reply(w, map[string]any{"keysets": ks}, err)
	})
	mux.HandleFunc("GET /v1/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		ks, err := m.Keys(r.PathValue("id"))
		reply(w, map[string]any{"keysets": ks}, err)
	})
	mux.HandleFunc("POST /v1/mint/quote/bolt11", m.handleMintQuote)
	mux.HandleFunc("GET /v1/mint/quote/bolt11/{id}", func(w http.ResponseWriter, r *http.Request) {
		q, err := m.MintQuoteState(r.PathValue("id"))
		reply(w, q, err)
	})
	mux.HandleFunc("POST /v1/mint/bolt11", m.handleMint)
	mux.HandleFunc("POST /v1/swap", m.handleSwap)
	mux.HandleFunc("POST /v1/melt/quote/bolt11", m.handleMeltQuote)
	mux.HandleFunc("GET /v1/melt/quote/bolt11/{id}", func(w http.ResponseWriter, r *http.Request) {
		q, err := m.MeltQuoteState(r.PathValue("id"))
		reply(w, q, err)
	})
	mux.HandleFunc("POST /v1/melt/bolt11", m.handleMelt)
	mux.HandleFunc("POST /v1/checkstate", m.handleCheckState)
	mux.HandleFunc("POST /v1/restore", m.handleRestore)
	return cors(mux)
}

// cors lets browser wallets talk to the mint.
func cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Headers", "*")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		reply(w, nil, mintErr(CodeBadRequest, "malformed request"))
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code, body := status(err)
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
		return
	}
	json.NewEncoder(w).Encode(v)
}

func (m *Mint) handleMintQuote(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Amount uint64 `json:"amount"`
		Unit   string `json:"unit"`
	}
	if decode(w, r, &req) {
		q, err := m.CreateMintQuote(req.Amount, req.Unit)
		reply(w, q, err)
	}
}

func (m *Mint) handleMint(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Quote   string                   `json:"quote"`
		Outputs []payment.BlindedMessage `json:"outputs"`
	}
	if decode(w, r, &req) {
		sigs, err := m.MintTokens(req.Quote, req.Outputs)
		reply(w, map[string]any{"signatures": sigs}, err)
	}
}

func (m *Mint) handleSwap(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Inputs  []payment.Proof          `json:"inputs"`
		Outputs []payment.BlindedMessage `json:"outputs"`
	}
	if decode(w, r, &req) {
		sigs, err := m.Swap(req.Inputs, req.Outputs)
		reply(w, map[string]any{"signatures": sigs}, err)
	}
}

func (m *Mint) handleMeltQuote(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Request string `json:"request"`
		Unit    string `json:"unit"`
	}
	if decode(w, r, &req) {
		q, err := m.CreateMeltQuote(req.Request, req.Unit)
		reply(w, q, err)
	}
}

func (m *Mint) handleMelt(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Quote   string                   `json:"quote"`
		Inputs  []payment.Proof          `json:"inputs"`
		Outputs []payment.BlindedMessage `json:"outputs"`
	}
	if decode(w, r, &req) {
		q, err := m.Melt(req.Quote, req.Inputs, req.Outputs)
		reply(w, q, err)
	}
}

func (m *Mint) handleCheckState(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Ys []string `json:"Ys"`
	}
	if decode(w, r, &req) {
		st, err := m.CheckState(req.Ys)
		reply(w, map[string]any{"states": st}, err)
	}
}

func (m *Mint) handleRestore(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Outputs []payment.BlindedMessage `json:"outputs"`
	}
	if decode(w, r, &req) {
		outs, sigs, err := m.Restore(req.Outputs)
		reply(w, map[string]any{"outputs": outs, "signatures": sigs, "promises": sigs}, err)
	}
}

// Serve serves the API on ln until ctx ends, then shuts down within 5 s.
func (m *Mint) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
