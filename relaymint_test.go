package obol_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/internal/localnet"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment/mint"
)

// mintWatch is a mint that notes the address of every request, as a mint
// trying to tell which relay closes which channel would.
type mintWatch struct {
	url string
	mu  sync.Mutex
	by  map[string]map[string]int // by source IP, requests by path
	log []mintRequest             // every request, in the order they came
}

// mintRequest is one request as the mint saw it.
type mintRequest struct {
	ip, path string
	body     []byte
}

func startMintWatch(t testing.TB) *mintWatch { return startMintWatchAt(t, "127.0.0.1") }

// startMintWatchAt is a watching mint listening on ip.
func startMintWatchAt(t testing.TB, ip string) *mintWatch {
	w := &mintWatch{by: map[string]map[string]int{}}
	watch := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			ip, _, _ := net.SplitHostPort(r.RemoteAddr)
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			w.mu.Lock()
			if w.by[ip] == nil {
				w.by[ip] = map[string]int{}
			}
			w.by[ip][r.URL.Path]++
			w.log = append(w.log, mintRequest{ip: ip, path: r.URL.Path, body: body})
			w.mu.Unlock()
			h.ServeHTTP(rw, r)
		})
	}
	w.url = mint.StartTest(t, mint.Config{Seed: []byte("relays settle through circuits mint seed"), Dir: t.TempDir()},
		mint.ServerConfig{Host: ip, Wrap: watch}).URL
	return w
}

// from is what the mint saw from ip: requests by path.
func (w *mintWatch) from(ip string) map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for p, n := range w.by[ip] {
		out[p] = n
	}
	return out
}

// boundClient reaches the mint from ip: a relay's own address, had it a
// host of its own.
func boundClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 20 * time.Second}
}

// relaysOpen counts the channels open or closing at the relays, and the
// sat they have settled.
func relaysOpen(n *localnet.Network) (open int, earned uint64) {
	for _, r := range n.Relays {
		if p := r.Payments(); p != nil {
			ch := p.Payments().Channels
			open += ch[node.ChannelOpen] + ch[node.ChannelClosing]
		}
		earned += r.Balance()
	}
	return open, earned
}

// Written as the mint would try it: each relay has an address of its own
// (127.0.0.2x), and a direct connection of its wallet would come from it.
// A client pays the relays of its circuits; they close the channels at
// the mint — through circuits of their own, leaving from exits — and the
// mint sees not one request from the address of a relay that reaches it
// so, while it does see the one relay configured for a direct connection.
func TestRelaysSettleThroughCircuits(t *testing.T) {
	mw := startMintWatch(t)
	const relays, direct = 6, 5
	addr := func(i int) string { return fmt.Sprintf("127.0.0.%d", 20+i) }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	network, err := localnet.Start(ctx, localnet.Config{Relays: relays, Addr: addr,
		Payment: &pay.RelayPayment{Mint: mw.url, PerMiB: 1000, PerCircuit: 1000,
			SettleDelay: 10 * time.Millisecond, SettleMaxDelay: 100 * time.Millisecond},
		Configure: func(i int, c *node.RelayConfig) {
			c.Payment.HTTPClient = boundClient(addr(i))
			c.Payment.DirectMintConnectionUnsafe = i == direct
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	for i := range relays {
		if got := mw.from(addr(i)); i != direct && len(got) > 0 {
			t.Fatalf("relay %d fetched the keyset from its own address: %v", i, got)
		}
	}
	if got := mw.from(addr(direct)); got["/v1/keysets"] == 0 {
		t.Fatalf("the mint did not see the relay that connects directly (%v): the watch sees nothing", got)
	}

	// A client pays for a stream through the relays.
	walletDir := fundedWallet(t, ctx, mw.url, 50_000)
	c, err := obol.NewClient(obol.ClientConfig{Bootstrap: network.Bootstrap(), AllowSameSubnet: true, MinGuardAge: -1,
		Sample: relays, Pay: &obol.PayConfig{WalletDir: walletDir, DirectMintConnectionUnsafe: true}})
	if err != nil {
		t.Fatal(err)
	}
	stop, done := runPaying(t, ctx, c)
	stop() // the client's circuits end; the relays close their channels
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	for {
		open, earned := relaysOpen(network)
		if open == 0 && earned > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("relays: %d channels open, %d sat earned", open, earned)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for i := range relays {
		if got := mw.from(addr(i)); i != direct && len(got) > 0 {
			t.Errorf("the mint saw relay %d's address: %v", i, got)
		}
	}
	throughCircuits := uint64(0)
	for i, r := range network.Relays {
		if i != direct {
			throughCircuits += r.Balance()
		}
	}
	if throughCircuits == 0 {
		t.Fatal("no relay that reaches the mint through circuits settled a channel")
	}
	t.Logf("relays that settled through circuits earned %d sat; the mint saw their addresses 0 times", throughCircuits)
}

// runPaying runs c and moves a stream through it beyond the relays' free
// allowance, so that they must be paid; stop ends Run, whose error comes
// on done.
func runPaying(t *testing.T, ctx context.Context, c *obol.Client) (stop context.CancelFunc, done <-chan error) {
	cctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	errc := make(chan error, 1)
	go func() { errc <- c.Run(cctx) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveBytes(ln, 512<<10)
	conn, err := c.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if n, err := io.Copy(io.Discard, conn); err != nil || n != 512<<10 {
		t.Fatalf("read %d bytes (%v)", n, err)
	}
	return stop, errc
}

// fundedWallet is a wallet directory holding amount of mint url's ecash.
func fundedWallet(t testing.TB, ctx context.Context, url string, amount uint64) string {
	dir := t.TempDir()
	w, err := pay.OpenWallet(pay.WalletConfig{Dir: dir, Mint: url, DirectMintConnectionUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.TopUp(ctx, amount); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serveBytes answers every connection with n zero bytes.
func serveBytes(ln net.Listener, n int) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.Write(make([]byte, n))
		}()
	}
}

// A client that reaches its mint through circuits settles through them at
// shutdown: the wallet asks the mint about its channels before the links
// and the circuits to the mint close, and the change of channels the
// relays have closed comes back then, not at a later start.
func TestClientSettlesThroughCircuitsAtShutdown(t *testing.T) {
	mw := startMintWatch(t)
	const relays = 6
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	network, err := localnet.Start(ctx, localnet.Config{Relays: relays,
		Payment: &pay.RelayPayment{Mint: mw.url, PerMiB: 1000, PerCircuit: 1000, DirectMintConnectionUnsafe: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	walletDir := fundedWallet(t, ctx, mw.url, 50_000)
	logs := &recordLog{}
	c, err := obol.NewClient(obol.ClientConfig{Bootstrap: network.Bootstrap(), AllowSameSubnet: true, MinGuardAge: -1,
		MinExitAge: -1, Sample: relays, Pay: &obol.PayConfig{WalletDir: walletDir, SettleEvery: time.Hour},
		Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	stop, done := runPaying(t, ctx, c)
	for c.Channels() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no channel booked")
		case <-time.After(50 * time.Millisecond):
		}
	}
	before := mw.total()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if logs.has("settlement at shutdown failed") {
		t.Fatal("the wallet could not reach the mint at shutdown")
	}
	if after := mw.total(); after == before {
		t.Fatal("the wallet sent the mint nothing at shutdown")
	}
}

// total is how many requests the mint saw.
func (w *mintWatch) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, paths := range w.by {
		for _, k := range paths {
			n += k
		}
	}
	return n
}

// recordLog is a slog.Handler that keeps every message, at every level.
type recordLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *recordLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *recordLog) WithGroup(string) slog.Handler      { return l }

func (l *recordLog) has(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.msgs, msg)
}
