package mint

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// TestServer is a mint serving its HTTP API on a loopback port, for tests,
// benchmarks and test networks.
type TestServer struct {
	*Mint
	URL string // http://HOST:PORT, no trailing slash

	srv  *http.Server
	done chan struct{}
}

// ServerConfig shapes a TestServer.
type ServerConfig struct {
	// Host is the address it listens on; default 127.0.0.1.
	Host string
	// Wrap, if set, wraps the mint's handler: to watch requests or to
	// fail some.
	Wrap func(http.Handler) http.Handler
}

// Start opens a mint with cfg and serves it as sc says until Close.
func Start(cfg Config, sc ServerConfig) (*TestServer, error) {
	if sc.Host == "" {
		sc.Host = "127.0.0.1"
	}
	m, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(sc.Host, "0"))
	if err != nil {
		m.Close()
		return nil, err
	}
	h := m.Handler()
	if sc.Wrap != nil {
		h = sc.Wrap(h)
	}
	s := &TestServer{Mint: m, URL: "http://" + ln.Addr().String(), done: make(chan struct{}),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() { defer close(s.done); s.srv.Serve(ln) }()
	return s, nil
}

// Close stops serving, waiting up to 5 s for the requests under way, and
// closes the mint.
func (s *TestServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-s.done
	return errors.Join(err, s.Mint.Close())
}

// TB is what StartTest needs of a test or benchmark (testing.TB has it).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// StartTest is Start for a test: it fails the test on error and closes
// the server at the test's end.
func StartTest(t TB, cfg Config, sc ServerConfig) *TestServer {
	t.Helper()
	s, err := Start(cfg, sc)
	if err != nil {
		t.Fatalf("test mint: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
