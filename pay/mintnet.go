package pay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/payment/wallet"
)

// MintClass is a class of mint operation. Operations of different
// classes, and different operations of one class, never share an
// isolation key: the mint cannot tell from the way they reach it that
// they come from one user.
type MintClass uint8

// Classes of mint operation.
const (
	// MintKeysets fetches the mint's keysets and keys.
	MintKeysets MintClass = iota + 1
	// MintPool prepares the pool of standard denominations (a split),
	// and the user's own wallet operations (top-up, send, receive).
	MintPool
	// MintFund swaps pool proofs into one channel's funding token.
	MintFund
	// MintSettle takes back what one channel left the client (NUT-07
	// state check, NUT-09 restore, reclaim or refund swap), settles
	// wallet operations left pending, and closes a relay's channel.
	MintSettle
)

func (c MintClass) String() string {
	switch c {
	case MintKeysets:
		return "keysets"
	case MintPool:
		return "pool"
	case MintFund:
		return "fund"
	case MintSettle:
		return "settle"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// MintOp names one mint operation: its class and an isolation key drawn
// fresh for it. Every request of the operation carries the same key; no
// other operation ever does.
type MintOp struct {
	Class MintClass
	Key   [32]byte
}

// NewMintOp draws a fresh isolation key for an operation of class c.
func NewMintOp(c MintClass) MintOp {
	op := MintOp{Class: c}
	rand.Read(op.Key[:])
	return op
}

type mintOpKey struct{}

// WithMintOp returns a context under which mint requests belong to op.
func WithMintOp(ctx context.Context, op MintOp) context.Context {
	return context.WithValue(ctx, mintOpKey{}, op)
}

// MintOpFrom returns the operation a context names, if any.
func MintOpFrom(ctx context.Context) (MintOp, bool) {
	op, ok := ctx.Value(mintOpKey{}).(MintOp)
	return op, ok
}

// MintTransport carries a user's or a relay's requests to the mint, so
// that the mint never sees their address: through an obol circuit (to an
// exit that reaches the mint, or to the mint as a hidden service) isolated
// by op.Key, so that operations with different keys never share a
// circuit. RoundTrip is called with the request's context, which also
// names op (MintOpFrom).
type MintTransport interface {
	RoundTrip(op MintOp, r *http.Request) (*http.Response, error)
}

// MintTransportFunc is a MintTransport as a function.
type MintTransportFunc func(op MintOp, r *http.Request) (*http.Response, error)

func (f MintTransportFunc) RoundTrip(op MintOp, r *http.Request) (*http.Response, error) {
	return f(op, r)
}

// MintDialer opens a connection to the mint's address for one operation;
// an embedder dials through a circuit isolated by op.Key, e.g.
//
//	func(ctx context.Context, op pay.MintOp, network, addr string) (net.Conn, error) {
//		return mgr.DialConnected(client.WithIsolation(ctx, client.IsolationKey(op.Key)), network, addr)
//	}
type MintDialer func(ctx context.Context, op MintOp, network, addr string) (net.Conn, error)

// CircuitTransport is the MintTransport of a node that reaches its mint
// through obol: every operation on circuits of an isolation key of its
// own, a .obol mint through hs (the hidden-service client's Dial) and any
// other through exits (a circuit manager's DialConnected, which sends a
// request only once the exit has connected to the mint, so that a swap
// whose circuits all failed is known never to have left).
func CircuitTransport(exits, hs func(ctx context.Context, network, addr string) (net.Conn, error)) MintTransport {
	return DialerTransport(func(ctx context.Context, op MintOp, network, addr string) (net.Conn, error) {
		ctx = client.WithIsolation(ctx, client.IsolationKey(op.Key))
		if host, _, err := net.SplitHostPort(addr); err == nil && descriptor.IsHSHost(host) {
			return hs(ctx, network, addr)
		}
		return exits(ctx, network, addr)
	})
}

// DialerTransport is a MintTransport over a dialer: every request gets a
// connection of its own (no keep-alive), so that no connection is reused
// across operations. A request whose connection could not be opened
// fails with wallet.ErrNotSent: the mint never saw it.
func DialerTransport(dial MintDialer) MintTransport {
	return MintTransportFunc(func(op MintOp, r *http.Request) (*http.Response, error) {
		t := &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, op, network, addr)
				if err != nil {
					return nil, fmt.Errorf("%w: %w", wallet.ErrNotSent, err)
				}
				return c, nil
			},
		}
		defer t.CloseIdleConnections()
		return t.RoundTrip(r)
	})
}

// ErrNoMintTransport: a wallet was to reach the mint with neither a
// MintTransport nor DirectMintConnectionUnsafe.
var ErrNoMintTransport = errors.New("pay: no way to the mint: give a MintTransport (through circuits) or set DirectMintConnectionUnsafe")

// mintRoundTripper is the http.RoundTripper of a wallet: it gives each
// request the operation its context names, or, for a request that names
// none, an operation of its own of class def.
type mintRoundTripper struct {
	t   MintTransport
	def MintClass
}

func (m mintRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	op, ok := MintOpFrom(r.Context())
	if !ok {
		op = NewMintOp(m.def)
		r = r.WithContext(WithMintOp(r.Context(), op))
	}
	return m.t.RoundTrip(op, r)
}

// mintHTTPClient is how a wallet reaches the mint: through t, or
// directly (hc, or http.DefaultClient) only if direct is set.
func mintHTTPClient(t MintTransport, def MintClass, hc *http.Client, direct bool) (*http.Client, error) {
	switch {
	case t != nil:
		c := &http.Client{Transport: mintRoundTripper{t: t, def: def}}
		if hc != nil {
			c.Timeout = hc.Timeout
		}
		return c, nil
	case !direct:
		return nil, ErrNoMintTransport
	case hc != nil:
		return hc, nil
	}
	return http.DefaultClient, nil
}

// MintCircuitBytes is what a circuit that carries mint requests may move
// on the relays' free allowances: a few requests and answers.
const MintCircuitBytes = 32 << 10

// ErrNoAllowance: a path cannot carry mint requests on free allowances.
var ErrNoAllowance = errors.New("pay: a relay of the path gives too small a free allowance for mint requests")

// MintPay is client.Config.Pay for the circuits that carry mint requests
// (the MintTransport's): they fund no channel — a funding needs a mint
// request, which would need another circuit — and run on the relays'
// free allowances, so every paid relay of the path must give at least
// MintCircuitBytes (see MintUsable). Close such a circuit when its
// operation ends.
func MintPay(path []*descriptor.Relay) (client.PayConfig, error) {
	for _, d := range path {
		if !MintUsable(d) {
			return client.PayConfig{}, ErrNoAllowance
		}
	}
	return client.PayConfig{Hops: make([]client.HopPayment, len(path))}, nil
}

// MintUsable reports whether relay d can carry mint requests unpaid: it
// is free, or gives a free allowance of at least MintCircuitBytes. It is
// client.Config.Usable for the MintTransport's circuits.
func MintUsable(d *descriptor.Relay) bool {
	return d == nil || Free(d) || d.Payment.FreeBytes >= MintCircuitBytes
}
