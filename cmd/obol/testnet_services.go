package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/proxy"

	"github.com/obolnet/obol/internal/localnet"
	"github.com/obolnet/obol/internal/relaynet"
)

// demoPage is what the testnet's demo web server answers at /.
const demoPage = "hello from the obol testnet\n"

// demoFile is what it answers at /file: 4 MiB, far beyond what a paid
// relay carries before it is paid.
var demoFile = bytes.Repeat([]byte("obol testnet demo file, 64 bytes a line, paid for by the proxy.\n"), 1<<16)

// services are what `obol testnet` runs beside its relays: a demo web
// server, an `obol proxy` and an `obol serve` for the demo server, each a
// subcommand running in-process.
type services struct {
	web     *http.Server
	webAddr string
	socks   string // the proxy's SOCKS address
	status  string // the proxy's status page
	onion   string // the hidden service's .obol address
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	dir     string
}

// startServices starts the web server, the proxy (paying from a wallet
// funded at mintURL, unless it is "") and the hidden service against net
// and waits until each has said where it is.
func (t *testnet) startServices(ctx context.Context, net *localnet.Network, mintURL string) (*services, error) {
	s := &services{}
	var err error
	if s.dir, err = os.MkdirTemp("", "obol-testnet-services-"); err != nil {
		return nil, err
	}
	ln, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	s.webAddr = ln.Addr().String()
	s.web = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/file" {
			w.Write(demoFile)
			return
		}
		io.WriteString(w, demoPage)
	}), ReadHeaderTimeout: 10 * time.Second}
	go s.web.Serve(ln)

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	boot := net.Relays[0].Addrs()[0].String()
	socksAddr := "127.0.0.1:9050"
	if t.opts.check || !portFree(socksAddr) {
		socksAddr = "127.0.0.1:0"
	}
	proxyArgs := []string{"proxy", "--socks", socksAddr,
		"--bootstrap", boot, "--data-dir", s.dir + "/proxy", "--allow-same-subnet", "--min-guard-age", "0", "--min-exit-age", "0", "--log-level", "error"}
	if mintURL != "" {
		if err := localnet.FundWallet(ctx, s.walletDir(), mintURL, testnetFunds); err != nil {
			s.close()
			return nil, fmt.Errorf("funding the proxy's wallet: %w", err)
		}
		proxyArgs = append(proxyArgs, "--mint", mintURL, "--wallet-dir", s.walletDir())
	}
	statusAddr := "127.0.0.1:9112"
	if t.opts.check || !portFree(statusAddr) {
		statusAddr = "127.0.0.1:0"
	}
	proxyArgs = append(proxyArgs, "--status", statusAddr)
	got, err := s.sub(ctx, runCtx, []string{"  SOCKS5/SOCKS4a on ", "status page: "}, proxyArgs...)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	s.socks, s.status = got[0], got[1]
	serveArgs := []string{"serve", "--target", s.webAddr, "--port", "80",
		"--bootstrap", boot, "--data-dir", s.dir + "/serve", "--allow-same-subnet", "--min-guard-age", "0", "--min-exit-age", "0", "--log-level", "error"}
	if mintURL != "" {
		if err := localnet.FundWallet(ctx, s.serviceWalletDir(), mintURL, testnetFunds); err != nil {
			s.close()
			return nil, fmt.Errorf("funding the hidden service's wallet: %w", err)
		}
		serveArgs = append(serveArgs, "--mint", mintURL, "--wallet-dir", s.serviceWalletDir())
	}
	got, err = s.sub(ctx, runCtx, []string{"  address "}, serveArgs...)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("hidden service: %w", err)
	}
	s.onion = strings.Fields(got[0])[0]
	return s, nil
}

// sub runs an obol subcommand until runCtx ends and returns, for each of
// prefixes, the rest of the first stdout line starting with it.
func (s *services) sub(ctx, runCtx context.Context, prefixes []string, args ...string) ([]string, error) {
	pr, pw := io.Pipe()
	errs := &relaynet.LogBuffer{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		code := run(runCtx, args, env{stdout: pw, stderr: errs, now: time.Now})
		pw.CloseWithError(fmt.Errorf("exited with %d: %s", code, strings.TrimSpace(errs.String())))
	}()
	found := make(chan []string, 1)
	go func() {
		vals, n := make([]string, len(prefixes)), 0
		sc := bufio.NewScanner(pr)
		for n < len(prefixes) && sc.Scan() {
			for i, p := range prefixes {
				if rest, ok := strings.CutPrefix(sc.Text(), p); ok && vals[i] == "" {
					vals[i] = strings.TrimSpace(rest)
					n++
				}
			}
		}
		if n == len(prefixes) {
			found <- vals
		}
		close(found)
		io.Copy(io.Discard, pr) // keep the command's output flowing
	}()
	select {
	case v, ok := <-found:
		if !ok {
			return nil, fmt.Errorf("%s %s", args[0], errs.String())
		}
		return v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop stops the proxy, the hidden service and the web server; their
// files stay until close.
func (s *services) stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.web != nil {
		s.web.Close()
	}
}

// close stops everything and removes the files.
func (s *services) close() {
	s.stop()
	os.RemoveAll(s.dir)
}

// fetch GETs url through the proxy, the name resolved at the far end.
func (s *services) fetch(ctx context.Context, url string) (string, error) {
	d, err := proxy.SOCKS5("tcp", s.socks, nil, proxy.Direct)
	if err != nil {
		return "", err
	}
	cd := d.(proxy.ContextDialer)
	hc := &http.Client{Transport: &http.Transport{DialContext: cd.DialContext}}
	var last error
	for ctx.Err() == nil { // the first circuits and the descriptor may be on their way
		b, err := fetchOnce(ctx, hc, url)
		if err == nil {
			return string(b), nil
		}
		last = err
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("%v (last error: %v)", ctx.Err(), last)
}

// fetchStall is how long a fetch may go without a byte before it is
// given up and tried again: a slow machine slows a transfer down, a
// stalled circuit stops it.
const fetchStall = 30 * time.Second

// fetchOnce fetches url once, giving up if fetchStall passes without a
// byte of the answer.
func fetchOnce(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(fetchStall, func() { cancel(fmt.Errorf("no byte for %v", fetchStall)) })
	defer stall.Stop()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, errors.Join(err, context.Cause(ctx))
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	buf := make([]byte, 32<<10)
	for {
		stall.Reset(fetchStall)
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err == io.EOF {
			return b.Bytes(), nil
		}
		if err != nil {
			return nil, errors.Join(err, context.Cause(ctx))
		}
	}
}

// serviceChecks fetches the demo page through an exit and from the
// hidden service.
func (t *testnet) serviceChecks(ctx context.Context, s *services) []check {
	var out []check
	for _, c := range []struct{ name, url, want string }{
		{"a page fetched through the proxy and an exit", "http://" + s.webAddr + "/", demoPage},
		{"a page fetched from the hidden service through the proxy", "http://" + s.onion + "/", demoPage},
		{"a 4 MiB file fetched through the proxy and an exit", "http://" + s.webAddr + "/file", string(demoFile)},
		{"a 4 MiB file fetched from the hidden service", "http://" + s.onion + "/file", string(demoFile)},
	} {
		// A bound on the whole check; each try ends sooner if it stalls.
		fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		body, err := s.fetch(fctx, c.url)
		cancel()
		detail := "ok"
		if err != nil {
			detail = err.Error()
		} else if body != c.want {
			detail = fmt.Sprintf("unexpected body of %d bytes", len(body))
		}
		out = append(out, check{c.name, err == nil && body == c.want, detail})
	}
	if t.mint != nil {
		out = append(out, t.mintServiceCheck(ctx, s))
	}
	return out
}

// mintServiceCheck fetches the mint's keysets as a hidden service through
// the proxy and compares them with what the mint serves locally.
func (t *testnet) mintServiceCheck(ctx context.Context, s *services) check {
	const name = "the mint answered as a hidden service through the proxy"
	if t.mintHS == nil {
		return check{name, false, fmt.Sprintf("not started: %v", t.mintHSErr)}
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	want, err := fetchOnce(fctx, http.DefaultClient, t.mint.url+"/v1/keysets")
	if err != nil {
		return check{name, false, "the mint itself: " + err.Error()}
	}
	got, err := s.fetch(fctx, t.mintHS.url+"/v1/keysets")
	switch {
	case err != nil:
		return check{name, false, err.Error()}
	case got != string(want):
		return check{name, false, fmt.Sprintf("keysets differ: %d bytes, want %d", len(got), len(want))}
	}
	return check{name, true, "keysets at " + strings.TrimPrefix(t.mintHS.url, "http://")}
}

// printBox prints the ready-to-paste commands.
func (t *testnet) printBox(net *localnet.Network, s *services) {
	w := t.e.stdout
	fmt.Fprintf(w, "\n┌─ the obol testnet is up ────────────────────────────────────────\n")
	fmt.Fprintf(w, "│ through an exit:     curl --socks5-hostname %s http://%s/\n", s.socks, s.webAddr)
	fmt.Fprintf(w, "│ a hidden service:    curl --socks5-hostname %s http://%s/\n", s.socks, s.onion)
	fmt.Fprintf(w, "│ SOCKS4a works too:   curl --socks4a %s http://%s/\n", s.socks, s.webAddr)
	fmt.Fprintf(w, "│ a paid 4 MiB:        curl --socks5-hostname %s http://%s/file -o /dev/null\n", s.socks, s.webAddr)
	fmt.Fprintf(w, "│ the proxy's status:  %s (or: go run ./cmd/obol status --addr %s)\n", s.status, strings.TrimSuffix(strings.TrimPrefix(s.status, "http://"), "/"))
	if addrs := net.Relays[0].Addrs(); len(addrs) > 0 {
		fmt.Fprintf(w, "│ list the relays:     go run ./cmd/obol relays --bootstrap %s\n", addrs[0])
	}
	if t.mint != nil {
		fmt.Fprintf(w, "│ costs:               relays charge %s per MiB and %s per circuit, in ecash of the\n",
			formatMsat(testnetPerMiB), formatMsat(testnetPerCircuit))
		fmt.Fprintf(w, "│                      mint at %s; the proxy's wallet was given %d sat\n", t.mint.url, uint64(testnetFunds))
	} else {
		fmt.Fprintf(w, "│ costs:               none: the relays are free (--free)\n")
	}
	fmt.Fprintf(w, "└─ Ctrl-C stops everything and settles the payment channels\n")
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
