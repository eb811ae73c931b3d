package main

// Faults with real processes: paid relays killed by SIGKILL in the middle
// of transfers, and a mint that goes away and comes back. The relays and
// the proxy are the obol binary, built once per test; the mint and the web
// server run in the test process.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/obolnet/obol/internal/localnet"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/internal/obolbin"
	"github.com/obolnet/obol/internal/status"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/payment"
)

// faultFunds is what the proxy's wallet is given, in sat.
const faultFunds = 100_000

// streamBound is the longest a download may take to end, completed or
// failed, once its relays are killed: beyond it the stream hangs.
const streamBound = 40 * time.Second

// buildObol is the obol binary, built once per test process.
func buildObol(t *testing.T) string { return obolbin.Build(t) }

// child is one run of the obol binary.
type child struct {
	cmd      *exec.Cmd
	out, err syncBuffer
	done     chan struct{} // closed when it has exited
}

func startChild(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.err
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.cmd.Process.Kill(); <-c.done })
	return c
}

// kill ends the process at once, as a crash or a power cut would.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// interrupt sends SIGINT and returns the exit code.
func (c *child) interrupt(t *testing.T) int {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit within 60s of SIGINT; stderr:\n%s", c.err.String())
		return -1
	}
}

// waitOut waits for a stdout line starting with prefix and returns the
// rest of it.
func (c *child) waitOut(t *testing.T, prefix string) string {
	t.Helper()
	var rest string
	c.waitUntil(t, "a line "+strconv.Quote(prefix), func() bool {
		for _, line := range strings.Split(c.out.String(), "\n") {
			if r, ok := strings.CutPrefix(line, prefix); ok {
				rest = strings.TrimSpace(r)
				return true
			}
		}
		return false
	})
	return rest
}

// waitLog waits until the log (stderr) holds s.
func (c *child) waitLog(t *testing.T, s string) {
	t.Helper()
	c.waitUntil(t, "log "+strconv.Quote(s), func() bool { return strings.Contains(c.err.String(), s) })
}

func (c *child) waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		select {
		case <-c.done:
			t.Fatalf("exited with %d before %s; stderr:\n%s", c.cmd.ProcessState.ExitCode(), what, c.err.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 60s; stdout:\n%s\nstderr:\n%s", what, c.out.String(), c.err.String())
		}
	}
}

// faultMint is `obol mint` on a fixed address, which can go away and come
// back with its journal.
type faultMint struct {
	args []string
	url  string
	p    *child
}

func startFaultMint(t *testing.T, bin string) *faultMint {
	t.Helper()
	fm := &faultMint{args: []string{"mint", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1")),
		"--data-dir", t.TempDir(), "--log-format", "json"}}
	fm.start(t, bin)
	return fm
}

func (fm *faultMint) start(t *testing.T, bin string) {
	t.Helper()
	fm.p = startChild(t, bin, fm.args...)
	fm.url = fm.p.waitOut(t, "mint URL: ")
}

// stop stops the mint: it cannot be reached until start.
func (fm *faultMint) stop(t *testing.T) {
	t.Helper()
	if code := fm.p.interrupt(t); code != exitOK {
		t.Errorf("mint exit code %d", code)
	}
}

// faultRelay is a paid relay process with its data directory, which
// outlives its runs.
type faultRelay struct {
	name string
	dir  string
	args []string
	stat string // host:port of its status API
	id   string // peer ID
	addr string // /ip4/…/p2p/… as others bootstrap through it
	p    *child
	logs []string // stderr of its earlier runs
}

// freePort returns a TCP port free on ip just now.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// launch starts the relay's process; start waits for it to listen too.
func (r *faultRelay) launch(t *testing.T, bin string) {
	t.Helper()
	if r.p != nil {
		r.logs = append(r.logs, r.p.err.String())
	}
	r.p = startChild(t, bin, r.args...)
}

func (r *faultRelay) start(t *testing.T, bin string) {
	t.Helper()
	r.launch(t, bin)
	r.id = r.p.waitOut(t, "peer ID:")
}

func (r *faultRelay) running() bool {
	select {
	case <-r.p.done:
		return false
	default:
		return true
	}
}

// readStatus reads a node's /api/status at addr.
func readStatus(addr string) (status.Snapshot, error) {
	var s status.Snapshot
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/api/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

// faultNet is a mint, paid relays, a proxy paying them from a wallet and
// a web server, all on loopback.
type faultNet struct {
	t         *testing.T
	bin       string
	dir       string
	mint      *faultMint
	relays    []*faultRelay
	proxy     *child
	proxyLogs []string // stderr of its earlier runs
	socks     string
	stat      string // host:port of the proxy's status API
	web       string
}

// newFaultNet starts the mint and n relays (guards and exits, each on a
// loopback address of its own /16), funds the wallet and starts the proxy.
func newFaultNet(t *testing.T, n int) *faultNet {
	t.Helper()
	f := &faultNet{t: t, bin: buildObol(t), dir: t.TempDir(), web: blobServer(t)}
	f.mint = startFaultMint(t, f.bin)
	for i := range n {
		ip := fmt.Sprintf("127.%d.0.1", 100+i)
		r := &faultRelay{name: fmt.Sprintf("relay %d", i), dir: filepath.Join(f.dir, fmt.Sprintf("relay%d", i)),
			stat: fmt.Sprintf("%s:%d", ip, freePort(t, ip))}
		r.args = []string{"relay", "--data-dir", r.dir, "--listen", fmt.Sprintf("/ip4/%s/tcp/%d", ip, freePort(t, ip)),
			"--roles", "guard,exit", "--exit-policy", "accept *:*", "--allow-loopback",
			"--mint", f.mint.url, "--direct-mint-connection-unsafe", "--prepay", "6MiB", "--settle-after", "1s",
			"--status", r.stat, "--log-format", "json", "--log-level", "debug"}
		if i > 0 {
			r.args = append(r.args, "--bootstrap", f.relays[0].addr)
			r.launch(t, f.bin) // the others start together
		} else {
			r.start(t, f.bin)
			r.addr = "/ip4/" + r.p.waitOut(t, "  /ip4/")
		}
		f.relays = append(f.relays, r)
	}
	for _, r := range f.relays {
		r.id = r.p.waitOut(t, "peer ID:")
		r.p.waitLog(t, `"msg":"descriptor published"`)
	}
	f.waitViews(t, f.relays...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := localnet.FundWallet(ctx, f.walletDir(), f.mint.url, faultFunds); err != nil {
		t.Fatalf("funding the wallet: %v", err)
	}
	f.startProxy(t)
	t.Cleanup(func() {
		if t.Failed() {
			f.dumpLogs()
		}
		if dir := os.Getenv("OBOL_FAULT_LOGS"); dir != "" {
			f.saveLogs(dir)
		}
	})
	return f
}

// waitViews waits until each of relays holds every relay in its view: a
// relay extends circuits only to relays in its view, and the proxy's
// paths may hold any relay.
func (f *faultNet) waitViews(t *testing.T, relays ...*faultRelay) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range relays {
		for {
			s, err := readStatus(r.stat)
			if err == nil && s.DHT.KnownRelays >= len(f.relays) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s knows %d of %d relays after 30s (%v)", r.name, s.DHT.KnownRelays, len(f.relays), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// startProxy starts the proxy, paying from the wallet; it settles what
// an earlier run left as it starts.
func (f *faultNet) startProxy(t *testing.T, extra ...string) {
	t.Helper()
	if f.proxy != nil {
		f.proxyLogs = append(f.proxyLogs, f.proxy.err.String())
	}
	f.stat = fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	args := []string{"proxy", "--socks", "127.0.0.1:0", "--bootstrap", f.relays[0].addr, "--status", f.stat,
		"--data-dir", filepath.Join(f.dir, "proxy"), "--mint", f.mint.url, "--wallet-dir", f.walletDir(),
		"--sample", "10", "--log-format", "json", "--log-level", "debug"}
	f.proxy = startChild(t, f.bin, append(args, extra...)...)
	f.socks = f.proxy.waitOut(t, "  SOCKS5/SOCKS4a on ")
}

func (f *faultNet) walletDir() string { return filepath.Join(f.dir, "wallet") }

// dumpLogs shows the tail of every process's log.
func (f *faultNet) dumpLogs() {
	tail := func(s string) string {
		if len(s) > 6000 {
			return "…" + s[len(s)-6000:]
		}
		return s
	}
	for _, r := range f.relays {
		f.t.Logf("%s log:\n%s", r.name, tail(strings.Join(r.logs, "")+r.p.err.String()))
	}
	if f.proxy != nil {
		f.t.Logf("proxy log:\n%s", tail(strings.Join(f.proxyLogs, "")+f.proxy.err.String()))
	}
}

// saveLogs writes every run's log of every process into dir
// (OBOL_FAULT_LOGS), for a look at a run that passed.
func (f *faultNet) saveLogs(dir string) {
	save := func(name string, logs []string, last *child) {
		if last != nil {
			logs = append(logs, last.err.String())
		}
		err := os.WriteFile(filepath.Join(dir, f.t.Name()+"-"+name+".log"), []byte(strings.Join(logs, "")), 0o600)
		if err != nil {
			f.t.Errorf("saving logs: %v", err)
		}
	}
	for i, r := range f.relays {
		save(fmt.Sprintf("relay%d", i), r.logs, r.p)
	}
	save("proxy", f.proxyLogs, f.proxy)
}

// A web server of deterministic bodies: /blob?size=N&seed=S&rate=R sends
// N bytes drawn from seed S, at about R bytes per second (0: at once).

func blobServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(serveBlob)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func serveBlob(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("size"))
	seed, _ := strconv.ParseUint(q.Get("seed"), 10, 64)
	rate, _ := strconv.Atoi(q.Get("rate"))
	body := blob(seed, size)
	w.Header().Set("Content-Length", strconv.Itoa(size))
	start := time.Now()
	for sent := 0; sent < size; {
		n := min(32<<10, size-sent)
		if _, err := w.Write(body[sent : sent+n]); err != nil {
			return
		}
		sent += n
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(sent) * time.Second / time.Duration(rate))))
		}
	}
}

func blob(seed uint64, size int) []byte {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	b := make([]byte, size)
	mrand.NewChaCha8(key).Read(b)
	return b
}

// download is one GET through the proxy on circuits of its own
// (isolated by its SOCKS user name).
type download struct {
	key       string
	size      int
	seed      uint64
	got       atomic.Int64 // bytes received so far
	err       error        // nil: complete and byte-exact
	start, at time.Time    // when it started and ended
}

func newDownload(key string, size int) *download {
	return &download{key: key, size: size, seed: mrand.Uint64() >> 1}
}

// fetch runs d at about rate bytes per second (0: as fast as it goes).
func (f *faultNet) fetch(ctx context.Context, d *download, rate int) {
	d.start = time.Now()
	d.err = d.run(ctx, f.socks, fmt.Sprintf("http://%s/blob?size=%d&seed=%d&rate=%d", f.web, d.size, d.seed, rate))
	d.at = time.Now()
}

func (d *download) run(ctx context.Context, socks, url string) error {
	dialer, err := proxy.SOCKS5("tcp", socks, &proxy.Auth{User: d.key, Password: "x"}, proxy.Direct)
	if err != nil {
		return err
	}
	hc := http.Client{Transport: &http.Transport{DialContext: dialer.(proxy.ContextDialer).DialContext, DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	chunk := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(chunk)
		buf.Write(chunk[:n])
		d.got.Add(int64(n))
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if !bytes.Equal(buf.Bytes(), blob(d.seed, d.size)) {
		return fmt.Errorf("body of %d bytes differs from the %d sent", buf.Len(), d.size)
	}
	return nil
}

// fetchAll runs downloads concurrently, each on its own circuit.
func (f *faultNet) fetchAll(ctx context.Context, ds []*download, rate int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { f.fetch(ctx, d, rate) })
	}
	return &wg
}

// flowing waits until every download has received at least n bytes or
// ended.
func flowing(t *testing.T, ds []*download, n int64, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	deadline := time.After(60 * time.Second)
	for {
		all := true
		for _, d := range ds {
			all = all && d.got.Load() >= n
		}
		if all {
			return
		}
		select {
		case <-done:
			return
		case <-deadline:
			t.Fatalf("downloads did not get going within 60s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Money after the run: every process stopped.

// relayWallet opens a stopped relay's wallet: its balance and pending
// operations.
func relayWallet(t *testing.T, dir string) (balance uint64, pending int) {
	t.Helper()
	w, err := pay.OpenWallet(pay.WalletConfig{Dir: filepath.Join(dir, pay.WalletDir), DirectMintConnectionUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.Balance(), w.Pending()
}

// ledgerEarned reads a stopped relay's ledger: the sum of the last balance
// accepted on each channel (what its closes must have brought in, the
// mint charging no fees) and the channels not settled.
func ledgerEarned(t *testing.T, dir string) (earned uint64, unsettled int) {
	t.Helper()
	st, recs, err := payment.OpenFileStore(filepath.Join(dir, pay.LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	balance := map[payment.ChannelID]uint64{}
	settled := map[payment.ChannelID]bool{}
	for _, r := range recs {
		balance[r.Channel] = max(balance[r.Channel], r.Balance)
		settled[r.Channel] = settled[r.Channel] || r.Settled
	}
	for id, b := range balance {
		earned += b
		if !settled[id] {
			unsettled++
		}
	}
	return earned, unsettled
}

// stopProxy stops the proxy with SIGINT: its circuits end, and it
// settles what it can.
func (f *faultNet) stopProxy(t *testing.T) {
	t.Helper()
	if code := f.proxy.interrupt(t); code != exitOK {
		t.Errorf("proxy exit code %d", code)
	}
}

// waitSettled waits until no running relay has a channel open or closing:
// each settled, at the mint, every channel of its ended circuits (and
// those its ledger restored after a kill) without being stopped.
func (f *faultNet) waitSettled(t *testing.T) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(90 * time.Second)
	for {
		left := 0
		for _, r := range f.relays {
			if !r.running() {
				continue
			}
			s, err := readStatus(r.stat)
			if err != nil {
				t.Fatalf("%s status: %v", r.name, err)
			}
			if s.Payments != nil {
				left += s.Payments.Channels[node.ChannelOpen] + s.Payments.Channels[node.ChannelClosing]
			}
		}
		if left == 0 {
			t.Logf("every relay settled its channels %v after the proxy stopped", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d channels still open or closing at relays 90s after the proxy stopped", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// settleClient restarts the proxy once the relays have stopped: it
// starts from its cache of relays, builds no circuit, and takes back what
// the channels the relays closed did not spend; then it stops again.
func (f *faultNet) settleClient(t *testing.T) {
	t.Helper()
	// The relays are gone, and with them every circuit to the mint: the
	// user reclaims the remainders over a direct connection.
	// Settlement runs in batches at random times while the proxy runs
	// (specs/05); stopping it settles whatever is left.
	f.startProxy(t, "--timeout", "2s", "--direct-mint-connection-unsafe")
	f.stopProxy(t)
	if !strings.Contains(f.proxy.err.String(), `"msg":"payment channels settled"`) {
		t.Errorf("the proxy settled no channel; its log:\n%s", f.proxy.err.String())
	}
}

// stopRelays stops every relay with SIGINT: each closes at the mint the
// channels it has not settled yet.
func (f *faultNet) stopRelays(t *testing.T) {
	t.Helper()
	var wg sync.WaitGroup
	for _, r := range f.relays {
		if !r.running() {
			continue
		}
		wg.Go(func() {
			if code := r.p.interrupt(t); code != exitOK {
				t.Errorf("%s exit code %d", r.name, code)
			}
			if !strings.Contains(r.p.err.String(), `"msg":"payment channels settled"`) {
				t.Errorf("%s did not settle its channels as it stopped", r.name)
			}
		})
	}
	wg.Wait()
}

// checkMoney settles the client's channels and checks that not one sat
// is lost: what the relays redeemed, plus what the wallet holds, plus the
// funding of channels still refundable, is what the wallet was given; and
// that each relay redeemed every balance it accepted.
func (f *faultNet) checkMoney(t *testing.T) {
	t.Helper()
	var relays uint64
	for _, r := range f.relays {
		bal, pending := relayWallet(t, r.dir)
		earned, unsettled := ledgerEarned(t, r.dir)
		if pending != 0 || unsettled != 0 {
			t.Errorf("%s: %d wallet operations pending, %d channels unsettled", r.name, pending, unsettled)
		}
		if bal != earned {
			t.Errorf("%s: wallet holds %d sat, its ledger accepted balances of %d sat", r.name, bal, earned)
		}
		relays += bal
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pay, err := pay.OpenPayer(ctx, pay.PayerConfig{Wallet: pay.WalletConfig{Dir: f.walletDir(), DirectMintConnectionUnsafe: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer pay.Close()
	rep, err := pay.Settle(ctx)
	if err != nil {
		t.Fatalf("settling the client's channels: %v", err)
	}
	wallet := pay.Balance()
	t.Logf("money: relays %d + wallet %d + refundable %d (%d channels) = %d of %d sat; dust %d",
		relays, wallet, rep.Locked, rep.Open, relays+wallet+rep.Locked, faultFunds, rep.Dust)
	if relays == 0 {
		t.Errorf("the relays earned nothing")
	}
	if relays+wallet+rep.Locked != faultFunds || rep.Dust != 0 {
		t.Errorf("money lost: relays %d + wallet %d + refundable %d = %d, given %d; dust %d",
			relays, wallet, rep.Locked, relays+wallet+rep.Locked, faultFunds, rep.Dust)
	}
}

// Relays killed during paid transfers.

// faultRounds is how many times TestFaultsRelayKilled kills relays:
// OBOL_FAULT_ROUNDS, default 3 (about a minute).
func faultRounds(t *testing.T) int {
	if s := os.Getenv("OBOL_FAULT_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("OBOL_FAULT_ROUNDS=%q is not a positive count", s)
		}
		return n
	}
	return 3
}

// TestFaultsRelayKilled runs eight paid relays and a paying proxy as
// processes, and in each round SIGKILLs one or two relays in the middle
// of four concurrent downloads: each download completes byte-exact or
// fails within streamBound; at least one through the killed exit fails,
// no more than the killed relays' circuits; new requests succeed on other
// paths; the killed relays restart on their data directories. At the end
// the proxy stops, every relay settles every channel (those its ledger
// restored too) without being stopped, the relays stop with SIGINT, and
// not one sat is lost.
func TestFaultsRelayKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nine processes")
	}
	start := time.Now()
	phase := func(what string) { t.Logf("%v: %s", time.Since(start).Round(100*time.Millisecond), what) }
	f := newFaultNet(t, 8)
	phase("network up")
	for round := range faultRounds(t) {
		f.killRound(t, round)
		phase(fmt.Sprintf("round %d done", round))
	}
	f.stopProxy(t)
	phase("proxy stopped")
	f.waitSettled(t)
	f.stopRelays(t)
	phase("relays stopped")
	f.settleClient(t)
	phase("client settled")
	f.checkMoney(t)
	phase("money checked")
}

// killRound is one round of TestFaultsRelayKilled.
func (f *faultNet) killRound(t *testing.T, round int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), streamBound)
	defer cancel()
	var ds []*download
	for i := range 4 {
		ds = append(ds, newDownload(fmt.Sprintf("round%d-%d", round, i), 8<<20))
	}
	// 768 KiB/s, about 11 s each: a fresh circuit runs on the relays' free
	// allowance until its channels are funded, up to 8 s after the build
	// (specs/05), so downloads start apart and must still overlap.
	wg := f.fetchAll(ctx, ds, 3<<18)
	flowing(t, ds, 512<<10, wg)
	time.Sleep(mrand.N(time.Second))
	victims, affected := f.pickVictims(t, ds)
	for _, r := range victims {
		r.p.kill()
	}
	killed := time.Now()
	// A download that had all but the last MiB at the kill may have had
	// the rest on the way, past the killed relays.
	midway := 0
	for _, d := range ds {
		if d.got.Load() < int64(d.size-1<<20) {
			midway++
		}
	}
	wg.Wait()
	failed := 0
	var slowest time.Duration
	for _, d := range ds {
		switch {
		case d.err == nil:
		case errors.Is(d.err, context.DeadlineExceeded):
			t.Errorf("round %d: download %s hung after the kill (%d of %d bytes): %v", round, d.key, d.got.Load(), d.size, d.err)
		case strings.Contains(d.err.Error(), "differs"):
			t.Errorf("round %d: download %s: %v", round, d.key, d.err)
		default:
			failed++
			slowest = max(slowest, d.at.Sub(killed))
		}
	}
	t.Logf("round %d: killed %d relays on the circuits of %d downloads (%d of %d midway); %d failed, the last %v after the kill",
		round, len(victims), affected, midway, len(ds), failed, slowest.Round(time.Millisecond))
	if failed == 0 && midway == len(ds) {
		t.Errorf("round %d: no download through the killed relays failed", round)
	}
	if failed > affected {
		t.Errorf("round %d: %d downloads failed, but only %d went through the killed relays", round, failed, affected)
	}
	f.newRequests(t, round)
	for _, r := range victims {
		r.start(t, f.bin)
	}
}

// pickVictims chooses, at random, a relay of the circuit of some
// download and maybe one more relay, and counts the circuits with streams
// (downloads) that pass through them.
func (f *faultNet) pickVictims(t *testing.T, ds []*download) ([]*faultRelay, int) {
	t.Helper()
	s, err := readStatus(f.stat)
	if err != nil {
		t.Fatalf("proxy status: %v", err)
	}
	var busy []status.Circuit
	for _, c := range s.Circuits {
		if c.Streams > 0 {
			busy = append(busy, c)
		}
	}
	if len(busy) == 0 {
		var state []string
		for _, d := range ds {
			state = append(state, fmt.Sprintf("%s: %d bytes, %v", d.key, d.got.Load(), d.err))
		}
		t.Fatalf("no circuit carries a download (%d circuits); downloads: %s", len(s.Circuits), strings.Join(state, "; "))
	}
	path := busy[mrand.N(len(busy))].Path
	chosen := map[string]bool{path[mrand.N(len(path))]: true}
	if mrand.N(2) == 1 {
		chosen[f.relays[mrand.N(len(f.relays))].id] = true
	}
	var victims []*faultRelay
	for _, r := range f.relays {
		if chosen[r.id] {
			victims = append(victims, r)
		}
	}
	affected := 0
	for _, c := range busy {
		if slices.ContainsFunc(c.Path, func(id string) bool { return chosen[id] }) {
			affected++
		}
	}
	return victims, affected
}

// newRequests checks that requests after a kill succeed: the proxy leaves
// the dead relays out and builds on other paths. A request may be refused
// once, at once, when its three path attempts all meet relays that just
// died (the manager learns of a dead relay only from a failed build); the
// second try must succeed.
func (f *faultNet) newRequests(t *testing.T, round int) {
	t.Helper()
	for i := range 3 {
		var d *download
		for try := range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), streamBound)
			d = newDownload(fmt.Sprintf("round%d-new%d-%d", round, i, try), 256<<10)
			f.fetch(ctx, d, 0)
			cancel()
			// Refused by the proxy: with a SOCKS reply, or (optimistic
			// data) by closing the connection before its first byte.
			refused := d.err != nil && (strings.Contains(d.err.Error(), "general SOCKS server failure") || d.got.Load() == 0)
			if !refused {
				break
			}
			t.Logf("round %d: new request %d refused after %v; trying again", round, i, d.at.Sub(d.start).Round(time.Millisecond))
		}
		if d.err != nil {
			t.Errorf("round %d: a new request failed after the kill: %v", round, d.err)
			continue
		}
		t.Logf("round %d: new request %d took %v", round, i, d.at.Sub(d.start).Round(time.Millisecond))
	}
}

// The mint goes away.

// TestFaultsMintAway stops the mint in the middle of paid downloads: the
// downloads complete byte-exact (their channels are funded, and relays
// verify payments without the mint); new requests end within streamBound,
// completed on circuits funded before, or refused by the proxy once it
// found the mint away, which it logs; the relays postpone the
// settlement of the circuits that ended and retry with back-off; the mint
// comes back on its address, the relays settle every channel, and not one
// sat is lost.
func TestFaultsMintAway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts seven processes")
	}
	start := time.Now()
	phase := func(what string) { t.Logf("%v: %s", time.Since(start).Round(100*time.Millisecond), what) }
	f := newFaultNet(t, 5)
	phase("network up")
	ctx, cancel := context.WithTimeout(context.Background(), 2*streamBound)
	defer cancel()
	var ds []*download
	for i := range 3 {
		ds = append(ds, newDownload(fmt.Sprintf("long%d", i), 6<<20))
	}
	wg := f.fetchAll(ctx, ds, 1<<20)
	flowing(t, ds, 1<<20, wg) // past the free allowance: paid
	f.mint.stop(t)
	down := time.Now()
	phase("mint stopped")
	f.requestsWithoutMint(t)
	wg.Wait()
	for _, d := range ds {
		if d.err != nil {
			t.Errorf("download %s, paid before the mint went away, failed after %v: %v", d.key, d.at.Sub(down), d.err)
		}
	}
	phase("downloads done")
	f.stopProxy(t)
	f.waitLogAny(t, `"msg":"settlement postponed"`)
	phase("settlement postponed")
	f.mint.start(t, f.bin)
	phase("mint back")
	f.waitSettled(t)
	phase("relays settled")
	f.stopRelays(t)
	f.settleClient(t)
	f.checkMoney(t)
	phase("money checked")
}

// requestsWithoutMint makes requests while the mint is away, each on a
// circuit of its own: a circuit funded before may carry it; a new one
// cannot fund its channels. Each must end within streamBound; once a
// funding has found the mint away, the proxy says so in its log and
// refuses the next requests rather than cut them midway: with a SOCKS
// reply, or, since it replies at once (optimistic data), by closing the
// connection before any byte.
func (f *faultNet) requestsWithoutMint(t *testing.T) {
	t.Helper()
	refused := 0
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), streamBound)
		d := newDownload(fmt.Sprintf("away%d", i), 2<<20)
		f.fetch(ctx, d, 0)
		cancel()
		took := d.at.Sub(d.start).Round(time.Millisecond)
		switch {
		case errors.Is(d.err, context.DeadlineExceeded):
			t.Errorf("request %d hung while the mint was away (%d bytes): %v", i, d.got.Load(), d.err)
		case d.err != nil && strings.Contains(d.err.Error(), "general SOCKS server failure"):
			refused++
			t.Logf("request %d refused by the proxy after %v", i, took)
		case d.err != nil && d.got.Load() == 0:
			// With optimistic data the proxy has replied before the
			// circuit exists: it refuses by closing the connection.
			refused++
			t.Logf("request %d refused by the proxy (connection closed) after %v: %v", i, took, d.err)
		case d.err != nil:
			t.Logf("request %d cut after %v, %d bytes: %v", i, took, d.got.Load(), d.err)
		default:
			t.Logf("request %d completed in %v", i, took)
		}
	}
	if refused == 0 {
		t.Errorf("no request was refused while the mint was away")
	}
	if !strings.Contains(f.proxy.err.String(), "the mint cannot be reached to fund their channels") {
		t.Errorf("the proxy did not say that the mint cannot be reached")
	}
}

// waitLogAny waits until some running relay's log holds s.
func (f *faultNet) waitLogAny(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, r := range f.relays {
			if strings.Contains(r.p.err.String(), s) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no relay logged %q within 60s", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
