package status

import (
	"context"
	"embed"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

//go:embed page
var page embed.FS

// Defaults of a server.
const (
	DefaultInterval = time.Second
	DefaultHistory  = 300 // samples: five minutes at one a second
)

// ServerConfig configures a status server.
type ServerConfig struct {
	Source   Source // required
	Interval time.Duration
	History  int
	// Remote lets the page answer requests for any host name. Otherwise it
	// answers only to localhost and loopback addresses, so that a web
	// page the operator visits cannot read it by DNS rebinding.
	Remote bool
	Logger *slog.Logger
}

// Server serves the status page and its JSON API:
//
//	/                 the page (HTML, script and style embedded)
//	/api/status       a Snapshot with the throughput history
//	/api/throughput   the throughput history alone
type Server struct {
	cfg ServerConfig

	mu      sync.Mutex // guards the fields below
	history []Sample
	last    *Traffic
	lastAt  time.Time
}

// NewServer returns a server; it starts nothing. Run samples throughput.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg}
}

// Run samples the source every interval until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	s.sample(ctx, time.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.sample(ctx, now)
		}
	}
}

// sample adds a point to the history: the rate since the previous one.
func (s *Server) sample(ctx context.Context, now time.Time) {
	tr := s.cfg.Source.Snapshot(ctx).Traffic
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil {
		dt := now.Sub(s.lastAt).Seconds()
		if dt > 0 {
			s.history = append(s.history, Sample{
				Time:        now.UTC(),
				BytesPerSec: float64(tr.Bytes-min(tr.Bytes, s.last.Bytes)) / dt,
				CellsPerSec: float64(tr.Cells-min(tr.Cells, s.last.Cells)) / dt,
				Circuits:    tr.CircuitsOpen,
			})
		}
		if n := len(s.history) - s.cfg.History; n > 0 {
			s.history = append(s.history[:0], s.history[n:]...)
		}
	}
	s.last, s.lastAt = &tr, now
}

// Throughput returns a copy of the history, oldest first.
func (s *Server) Throughput() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample{}, s.history...)
}

// Handler is the HTTP handler of the page and the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", s.serveStatus)
	mux.HandleFunc("GET /api/throughput", s.serveThroughput)
	mux.HandleFunc("GET /{$}", s.servePage)
	if s.cfg.Remote {
		return secureHeaders(mux)
	}
	return secureHeaders(loopbackOnly(mux))
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	snap := s.cfg.Source.Snapshot(r.Context())
	snap.Throughput = s.Throughput()
	writeJSON(w, snap)
}

func (s *Server) serveThroughput(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.Throughput())
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	b, err := page.ReadFile("page/index.html")
	if err != nil {
		http.Error(w, "page missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// secureHeaders forbids framing and any resource from elsewhere: the page
// needs nothing but itself.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// loopbackOnly refuses requests whose Host is not localhost or a loopback
// address (DNS rebinding).
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsLoopbackHost(r.Host) {
			http.Error(w, "this status page answers only to localhost and loopback addresses", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// IsLoopbackHost reports whether hostport ("host" or "host:port") names
// this machine's loopback: localhost or a loopback IP address.
func IsLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
