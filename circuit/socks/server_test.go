package socks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// directDialer dials targets directly over TCP.
type directDialer struct{}

func (directDialer) DialStream(ctx context.Context, req Request) (net.Conn, error) {
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", req.Target.String())
}

// recordingDialer dials targets directly over TCP (the tests' stand-in for
// a circuit) and records every request.
type recordingDialer struct {
	mu   sync.Mutex
	reqs []Request
	err  error // returned instead of dialing when set
}

func (d *recordingDialer) DialStream(ctx context.Context, req Request) (net.Conn, error) {
	d.mu.Lock()
	d.reqs = append(d.reqs, req)
	err := d.err
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", req.Target.String())
}

func (d *recordingDialer) requests() []Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Request(nil), d.reqs...)
}

func (d *recordingDialer) last(t *testing.T) Request {
	t.Helper()
	rs := d.requests()
	if len(rs) == 0 {
		t.Fatal("no request reached the dialer")
	}
	return rs[len(rs)-1]
}

// startServer runs a server on a loopback listener until the test ends,
// then checks that Serve returned and no goroutine leaked.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	checkLeaks(t)
	return startServerB(t, cfg)
}

// startServerB is startServer without the leak check, for benchmarks.
func startServerB(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// checkLeaks fails the test if goroutines started during it are still
// running a while after its cleanups.
func checkLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string { return echoServerB(t) }

func echoServerB(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { io.Copy(c, c); c.Close() })
		}
	})
	return ln.Addr().String()
}

func dialProxy(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func readN(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatalf("connection open, read %d bytes", n)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("read: %v, want EOF", err)
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "read" && !oe.Timeout()
}

func TestConfigValidate(t *testing.T) {
	d := &recordingDialer{}
	for _, c := range []Config{{}, {Dialer: d, HandshakeTimeout: -1}, {Dialer: d, DialTimeout: -1}, {Dialer: d, MaxConns: -1}} {
		if _, err := NewServer(c); err == nil {
			t.Errorf("NewServer(%+v) accepted", c)
		}
	}
	if _, err := NewServer(Config{Dialer: d}); err != nil {
		t.Fatal(err)
	}
}

func TestSOCKS5EchoWithOptimisticData(t *testing.T) {
	echo := echoServer(t)
	d := &recordingDialer{}
	_, addr := startServer(t, Config{Dialer: d})
	c := dialProxy(t, addr)
	ap := netipAddrPort(t, echo)
	msg := append(encodeGreeting(MethodNoAuth), encodeRequest5(CmdConnect, Target{IP: ap.Addr(), Port: ap.Port()})...)
	msg = append(msg, "early data"...)
	c.Write(msg)
	if got := readN(t, c, 2); !bytes.Equal(got, []byte{5, 0}) {
		t.Fatalf("method reply %x", got)
	}
	if got := readN(t, c, 10); !bytes.Equal(got, AppendReply5(nil, 0)) {
		t.Fatalf("reply %x", got)
	}
	if got := readN(t, c, 10); string(got) != "early data" {
		t.Fatalf("echo %q", got)
	}
	c.Write([]byte("more"))
	if got := readN(t, c, 4); string(got) != "more" {
		t.Fatalf("echo %q", got)
	}
	c.(*net.TCPConn).CloseWrite()
	expectClosed(t, c)
	if r := d.last(t); r.Protocol != SOCKS5 || !r.Isolation.IsZero() {
		t.Fatalf("request %+v", r)
	}
}

func TestSOCKS5ReplyCodes(t *testing.T) {
	tests := []struct {
		err  error
		want byte
	}{
		{ErrNotAllowed, Rep5NotAllowed},
		{ErrNetUnreachable, Rep5NetUnreachable},
		{ErrHostUnreachable, Rep5HostUnreachable},
		{ErrConnRefused, Rep5ConnRefused},
		{ErrTTLExpired, Rep5TTLExpired},
		{context.DeadlineExceeded, Rep5TTLExpired},
		{ErrAddrTypeNotSupported, Rep5AddrTypeNotSupported},
		{errors.New("circuit collapsed"), Rep5GeneralFailure},
	}
	d := &recordingDialer{}
	_, addr := startServer(t, Config{Dialer: d})
	for _, tt := range tests {
		d.mu.Lock()
		d.err = tt.err
		d.mu.Unlock()
		c := dialProxy(t, addr)
		c.Write(append(encodeGreeting(MethodNoAuth), encodeRequest5(CmdConnect, tgtHost("example.com", 80))...))
		readN(t, c, 2)
		if got := readN(t, c, 10); got[1] != tt.want {
			t.Errorf("%v: reply %#x, want %#x", tt.err, got[1], tt.want)
		}
		expectClosed(t, c)
	}
	if r := d.last(t); r.Host != "example.com" || r.IP.IsValid() {
		t.Fatalf("target %+v: the name must reach the dialer unresolved", r.Target)
	}
}

func TestSOCKS5DialTimeout(t *testing.T) {
	blocking := DialerFunc(func(ctx context.Context, _ Request) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	_, addr := startServer(t, Config{Dialer: blocking, DialTimeout: 50 * time.Millisecond})
	c := dialProxy(t, addr)
	c.Write(append(encodeGreeting(MethodNoAuth), encodeRequest5(CmdConnect, tgtHost("slow.test", 80))...))
	readN(t, c, 2)
	if got := readN(t, c, 10); got[1] != Rep5TTLExpired {
		t.Fatalf("reply %#x, want TTL expired", got[1])
	}
}

func TestSOCKS5Malformed(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		reply []byte // expected bytes before the close
	}{
		{"no acceptable method", encodeGreeting(0x01), []byte{5, 0xff}},
		{"bind", append(encodeGreeting(0), encodeRequest5(CmdBind, tgtIP("1.2.3.4", 80))...), append([]byte{5, 0}, AppendReply5(nil, Rep5CmdNotSupported)...)},
		{"udp associate", append(encodeGreeting(0), encodeRequest5(CmdUDPAssociate, tgtIP("1.2.3.4", 80))...), append([]byte{5, 0}, AppendReply5(nil, Rep5CmdNotSupported)...)},
		{"bad atyp", append(encodeGreeting(0), 5, 1, 0, 7, 1, 2, 3, 4, 0, 80), append([]byte{5, 0}, AppendReply5(nil, Rep5AddrTypeNotSupported)...)},
		{"bad request version", append(encodeGreeting(0), 4, 1, 0, 1, 1, 2, 3, 4, 0, 80), append([]byte{5, 0}, AppendReply5(nil, Rep5GeneralFailure)...)},
		{"empty name", append(encodeGreeting(0), 5, 1, 0, 3, 0, 0, 80), append([]byte{5, 0}, AppendReply5(nil, Rep5GeneralFailure)...)},
		{"bad userpass version", append(encodeGreeting(2), 9, 0, 0), []byte{5, 2, 1, 1}},
		{"truncated request", append(encodeGreeting(0), 5, 1, 0, 1, 1), append([]byte{5, 0}, AppendReply5(nil, Rep5GeneralFailure)...)},
		{"zero methods", []byte{5, 0}, nil},
		{"garbage", []byte{0x16, 3, 1, 0, 0}, nil},
	}
	d := &recordingDialer{}
	_, addr := startServer(t, Config{Dialer: d, HandshakeTimeout: 2 * time.Second})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialProxy(t, addr)
			c.Write(tt.in)
			c.(*net.TCPConn).CloseWrite() // truncation: the peer sees EOF
			got, _ := io.ReadAll(c)
			if !bytes.Equal(got, tt.reply) {
				t.Fatalf("got %x, want %x then close", got, tt.reply)
			}
		})
	}
	if n := len(d.requests()); n != 0 {
		t.Fatalf("%d malformed requests reached the dialer", n)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	_, addr := startServer(t, Config{Dialer: &recordingDialer{}, HandshakeTimeout: 50 * time.Millisecond})
	c := dialProxy(t, addr)
	c.Write([]byte{5, 1}) // a greeting that never ends
	expectClosed(t, c)
}

func TestSOCKS4Replies(t *testing.T) {
	echo := netipAddrPort(t, echoServer(t))
	d := &recordingDialer{}
	_, addr := startServer(t, Config{Dialer: d})

	c := dialProxy(t, addr)
	c.Write(append(encodeRequest4(CmdConnect, Target{IP: echo.Addr(), Port: echo.Port()}, "carol"), "hi"...))
	if got := readN(t, c, 8); got[0] != 0 || got[1] != Rep4Granted {
		t.Fatalf("reply %x", got)
	}
	if got := readN(t, c, 2); string(got) != "hi" {
		t.Fatalf("echo %q", got)
	}
	if r := d.last(t); r.Protocol != SOCKS4 || r.Isolation != NewIsolationKey("carol", "") {
		t.Fatalf("request %+v", r)
	}

	d.mu.Lock()
	d.err = ErrNotAllowed
	d.mu.Unlock()
	c = dialProxy(t, addr)
	c.Write(encodeRequest4(CmdConnect, tgtHost("example.com", 80), ""))
	if got := readN(t, c, 8); got[1] != Rep4Rejected {
		t.Fatalf("reply %x, want rejected", got)
	}
	expectClosed(t, c)
	if r := d.last(t); r.Protocol != SOCKS4a || r.Host != "example.com" || !r.Isolation.IsZero() {
		t.Fatalf("request %+v", r)
	}

	c = dialProxy(t, addr)
	c.Write(encodeRequest4(CmdBind, tgtIP("1.2.3.4", 80), ""))
	if got := readN(t, c, 8); got[1] != Rep4Rejected {
		t.Fatalf("bind reply %x, want rejected", got)
	}
}

func TestDisabledProtocols(t *testing.T) {
	_, addr := startServer(t, Config{Dialer: &recordingDialer{}, DisableSOCKS4: true, DisableHTTPConnect: true})
	for _, in := range [][]byte{encodeRequest4(CmdConnect, tgtIP("1.2.3.4", 80), ""), encodeHTTPConnect(tgtHost("a.test", 80), "", "", false)} {
		c := dialProxy(t, addr)
		c.Write(in)
		if got, _ := io.ReadAll(c); len(got) != 0 {
			t.Fatalf("disabled protocol answered %q", got)
		}
	}
}

func TestHTTPConnectStatuses(t *testing.T) {
	d := &recordingDialer{}
	_, addr := startServer(t, Config{Dialer: d})
	tests := []struct {
		in   string
		err  error
		want string
	}{
		{string(encodeHTTPConnect(tgtHost("a.test", 80), "", "", false)), ErrNotAllowed, "HTTP/1.1 403 "},
		{string(encodeHTTPConnect(tgtHost("a.test", 80), "", "", false)), ErrTTLExpired, "HTTP/1.1 504 "},
		{string(encodeHTTPConnect(tgtHost("a.test", 80), "", "", false)), ErrConnRefused, "HTTP/1.1 502 "},
		{"GET http://a.test/ HTTP/1.1\r\n\r\n", nil, "HTTP/1.1 405 "},
		{"CONNECT a.test HTTP/1.1\r\n\r\n", nil, "HTTP/1.1 400 "},
	}
	for _, tt := range tests {
		d.mu.Lock()
		d.err = tt.err
		d.mu.Unlock()
		c := dialProxy(t, addr)
		c.Write([]byte(tt.in))
		got, _ := io.ReadAll(c)
		if !bytes.HasPrefix(got, []byte(tt.want)) {
			t.Errorf("%q with %v: got %q, want %q", tt.in, tt.err, got, tt.want)
		}
	}
}

func TestMaxConns(t *testing.T) {
	block := make(chan struct{})
	dialer := DialerFunc(func(ctx context.Context, _ Request) (net.Conn, error) {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil, ErrConnRefused
	})
	_, addr := startServer(t, Config{Dialer: dialer, MaxConns: 1})
	defer close(block)
	first := dialProxy(t, addr)
	first.Write(append(encodeGreeting(0), encodeRequest5(CmdConnect, tgtHost("a.test", 80))...))
	readN(t, first, 2) // the first connection holds the only slot
	second := dialProxy(t, addr)
	expectClosed(t, second)
}

func TestServeAfterCloseAndIdempotentClose(t *testing.T) {
	checkLeaks(t)
	s, err := NewServer(Config{Dialer: &recordingDialer{}})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	c := dialProxy(t, ln.Addr().String())
	c.Write([]byte{5, 1, 0}) // a greeting, and then no request
	readN(t, c, 2)           // Serve runs: Close must not come first
	s.Close()
	s.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	expectClosed(t, c)
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := s.Serve(context.Background(), ln2); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve on a closed server: %v", err)
	}
}
