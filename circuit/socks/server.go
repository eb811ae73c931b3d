package socks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Config configures a Server. The zero value of every field but Dialer
// means its default.
type Config struct {
	// Dialer opens the streams. Required.
	Dialer Dialer
	// Logger receives debug records about requests (protocol and reply,
	// never destinations or credentials) and accept errors. Default: discard.
	Logger *slog.Logger
	// HandshakeTimeout bounds reading the request and writing the reply.
	// Default 10 s.
	HandshakeTimeout time.Duration
	// DialTimeout bounds Dialer.DialStream; expiry is reported as TTL
	// expired. Default 2 min.
	DialTimeout time.Duration
	// MaxConns caps concurrent client connections; more are closed at
	// once. Default 4096.
	MaxConns int
	// DisableSOCKS4 refuses SOCKS4 and SOCKS4a requests.
	DisableSOCKS4 bool
	// DisableHTTPConnect refuses HTTP CONNECT requests.
	DisableHTTPConnect bool
	// DisableOptimisticData makes every reply wait until the destination
	// has accepted the stream, so that a refusal is reported by its reply
	// code; by default the reply comes at once and the application's
	// first bytes go out with the stream's opening (08 §3.2).
	DisableOptimisticData bool
}

// Defaults.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultDialTimeout      = 2 * time.Minute
	DefaultMaxConns         = 4096
)

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Dialer == nil:
		return errors.New("socks: config: Dialer is required")
	case c.HandshakeTimeout < 0, c.DialTimeout < 0:
		return errors.New("socks: config: negative timeout")
	case c.MaxConns < 0:
		return errors.New("socks: config: negative MaxConns")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	return c
}

// Server accepts proxy connections and relays them over streams from its
// Dialer. Serve may run on several listeners at once.
type Server struct {
	cfg   Config
	slots chan struct{} // one token per open client connection

	closeOnce sync.Once
	closing   chan struct{} // closed by Close
}

// NewServer checks cfg and returns a server. It does no I/O.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Server{
		cfg:     cfg,
		slots:   make(chan struct{}, cfg.MaxConns),
		closing: make(chan struct{}),
	}, nil
}

// Serve accepts connections on ln until ctx is done or Close is called,
// then closes ln and every connection it accepted and returns once all its
// goroutines have ended: nil after ctx or Close, ErrServerClosed if the
// server was already closed, else the listener's error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	defer ln.Close()
	select {
	case <-s.closing:
		ln.Close()
		return ErrServerClosed
	default:
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	wg.Go(func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	})
	s.cfg.Logger.Info("socks: serving", "listen", ln.Addr().String())
	return s.acceptLoop(ctx, ln, &wg)
}

func (s *Server) acceptLoop(ctx context.Context, ln net.Listener, wg *sync.WaitGroup) error {
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("socks: accept: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Logger.Warn("socks: accept failed, retrying", "err", err, "backoff", backoff)
			sleepCtx(ctx, backoff)
			continue
		}
		backoff = 0
		select {
		case s.slots <- struct{}{}:
		default:
			s.cfg.Logger.Warn("socks: too many connections, dropping one", "max", s.cfg.MaxConns)
			conn.Close()
			continue
		}
		wg.Go(func() {
			defer func() { <-s.slots }()
			s.serveConn(ctx, conn)
		})
	}
}

// Close stops every Serve call and the connections they accepted. It is
// idempotent and does not wait; Serve returns when its goroutines ended.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
